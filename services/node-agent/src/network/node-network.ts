// The node's VM network: one Linux bridge holding the first address of the node's subnet (the
// instances' gateway) and one TAP device per VM on it, each VM with an address of its own from the
// subnet and a MAC derived from its instance id. iproute2's `ip` does the netlink work (Node has
// no netlink API); the nftables rules (node-firewall.ts) follow the attached instances. Everything
// runs in the network namespace the agent runs in, or a named one, so tests put the network in a
// namespace of their own and the host's interfaces and rules are never touched.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '@shellwego/kit/log';
import { formatIpv4, formatSubnet, gatewayOf, type Ipv4Subnet, instanceAddresses, parseIpv4, parseIpv4Subnet } from '@shellwego/kit/net';
import type { VmNetwork } from '../drivers/index.js';
import { bridgeMacFor, guestMacFor, isTapDevice, tapDeviceFor } from './instance-identity.js';
import { NetworkError } from './network-error.js';
import { type FirewallInstance, NodeFirewall } from './node-firewall.js';

const exec = promisify(execFile);

export { NetworkError };

export interface NodeNetworkOptions {
  /** Bridge device name, e.g. "swg0" (at most 15 characters). */
  readonly bridge: string;
  /** The node's subnet, e.g. "10.88.0.0/24"; its first address goes to the bridge. */
  readonly subnet: string;
  /** Resolvers the guests get; empty leaves each image's resolv.conf. */
  readonly dnsServers: readonly string[];
  readonly mtu?: number;
  /** IPv4 addresses or CIDRs guests may not reach through the node (the control services, a management network). */
  readonly blocked: readonly string[];
  readonly log: Logger;
  /**
   * A named network namespace (ip netns) holding the bridge and TAPs instead of the agent's own;
   * the VMM must then run in it too (e.g. a QEMU_BINARY wrapper using `ip netns exec`).
   */
  readonly namespace?: string | undefined;
}

/** What one instance gets: the VMM's TAP settings and the guest's interface settings. */
export interface InstanceNetwork {
  readonly vm: VmNetwork;
  /** e.g. "10.88.0.2". */
  readonly address: string;
  /** e.g. "10.88.0.2/24". */
  readonly addressCidr: string;
  readonly gateway: string;
  readonly dnsServers: readonly string[];
  readonly mtu: number;
}

interface Allocation {
  readonly address: number;
  readonly app: string;
}

const BRIDGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export class NodeNetwork {
  /** Instance id -> its address (as a number) and app. */
  private readonly allocated = new Map<string, Allocation>();
  private readonly firewall: NodeFirewall;
  /** False until the adopted instances are known: rules written before then would cut off the others. */
  private adoptionDone = false;
  /** Rule changes run one at a time, each from the allocations current when it runs. */
  private rules: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: NodeNetworkOptions,
    readonly subnet: Ipv4Subnet,
  ) {
    this.firewall = new NodeFirewall(options.namespace);
  }

  /** Checks the settings and makes the bridge (or takes over the one an earlier agent made). */
  static async open(options: NodeNetworkOptions): Promise<NodeNetwork> {
    if (!BRIDGE_NAME.test(options.bridge)) {
      throw new NetworkError(`bridge name ${JSON.stringify(options.bridge)} is not a valid Linux interface name (at most 15 characters)`);
    }
    const subnet = parseIpv4Subnet(options.subnet);
    if (subnet === undefined) {
      throw new NetworkError(`node subnet ${JSON.stringify(options.subnet)} is not an IPv4 CIDR of /30 or larger, e.g. 10.88.0.0/24`);
    }
    const network = new NodeNetwork(options, subnet);
    await network.ensureBridge();
    return network;
  }

  get bridge(): string {
    return this.options.bridge;
  }

  get gateway(): string {
    return formatIpv4(gatewayOf(this.subnet));
  }

  /** The address an instance holds, if any. */
  addressOf(instanceId: string): string | undefined {
    const held = this.allocated.get(instanceId);
    return held === undefined ? undefined : formatIpv4(held.address);
  }

  /**
   * Re-adoption, before any instance resumes: the instance keeps the address it had, and its rules
   * are part of the first ruleset completeAdoption writes.
   */
  reserve(instanceId: string, app: string, address: string): void {
    this.allocate(instanceId, app, address);
  }

  /**
   * Once every surviving instance is reserved: removes the TAP devices of instances that are gone,
   * turns forwarding on and replaces the rules with those of the instances held now, in one step
   * (a restarted agent's VMs keep the rules of the previous agent until then).
   */
  async completeAdoption(): Promise<void> {
    const owned = new Set([...this.allocated.keys()].map(tapDeviceFor));
    for (const device of await this.devices()) {
      if (isTapDevice(device) && !owned.has(device)) {
        await this.ip(['link', 'del', 'dev', device], `remove the stale TAP device ${device}`);
        this.options.log.warn({ tap: device }, 'removed a TAP device no instance owns');
      }
    }
    await this.firewall.enableForwarding();
    this.adoptionDone = true;
    await this.syncRules();
  }

  /**
   * Gives the instance its address (the one it had, when re-adopted) and a TAP device on the
   * bridge that is UP, then the rules that let it out and keep it to its app. Idempotent for a TAP
   * that exists already (a re-adopted VM holds it).
   */
  async attach(instanceId: string, app: string, previousAddress?: string): Promise<InstanceNetwork> {
    const address = this.allocate(instanceId, app, previousAddress);
    const tap = tapDeviceFor(instanceId);
    try {
      if (!(await this.deviceExists(tap))) {
        await this.ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap'], `create the TAP device ${tap}`);
      }
      await this.ip(['link', 'set', 'dev', tap, 'master', this.options.bridge], `put ${tap} on the bridge ${this.options.bridge}`);
      if (this.options.mtu !== undefined) await this.ip(['link', 'set', 'dev', tap, 'mtu', String(this.options.mtu)], `set the MTU of ${tap}`);
      await this.syncRules();
      await this.ip(['link', 'set', 'dev', tap, 'up'], `bring ${tap} up`);
    } catch (error) {
      // The failure is what the instance reports; a cleanup failure on top of it is only logged.
      await this.detach(instanceId).catch((cleanup: unknown) =>
        this.options.log.error({ instanceId, tap, err: String(cleanup) }, 'could not undo a failed network attach'),
      );
      throw error;
    }
    const gateway = this.gateway;
    this.options.log.info({ instanceId, app, tap, address: formatIpv4(address), bridge: this.options.bridge }, 'instance network attached');
    return {
      vm: { tapDevice: tap, guestMac: guestMacFor(instanceId), ...(this.options.mtu === undefined ? {} : { mtu: this.options.mtu }) },
      address: formatIpv4(address),
      addressCidr: `${formatIpv4(address)}/${this.subnet.prefixLength}`,
      gateway,
      dnsServers: this.options.dnsServers,
      mtu: this.options.mtu ?? 0,
    };
  }

  /** Removes the instance's rules and TAP device and frees its address; harmless when already gone. */
  async detach(instanceId: string): Promise<void> {
    const tap = tapDeviceFor(instanceId);
    const held = this.allocated.delete(instanceId);
    if (held) await this.syncRules();
    if (await this.deviceExists(tap)) {
      await this.ip(['link', 'del', 'dev', tap], `remove the TAP device ${tap}`);
    }
    if (held) this.options.log.info({ instanceId, tap }, 'instance network detached');
  }

  /** Removes the bridge and the rules (tests and uninstall; a restarting agent keeps them). */
  async remove(): Promise<void> {
    await this.firewall.remove();
    if (await this.deviceExists(this.options.bridge)) await this.ip(['link', 'del', 'dev', this.options.bridge], `remove the bridge ${this.options.bridge}`);
  }

  /** The instances as the rules see them. */
  private firewallInstances(): FirewallInstance[] {
    return [...this.allocated].map(([instanceId, { address, app }]) => ({
      instanceId,
      app,
      tap: tapDeviceFor(instanceId),
      mac: guestMacFor(instanceId),
      address: formatIpv4(address),
    }));
  }

  private syncRules(): Promise<void> {
    const next = this.rules.then(async () => {
      if (!this.adoptionDone) return;
      await this.firewall.apply({
        bridge: this.options.bridge,
        subnet: formatSubnet(this.subnet),
        blocked: this.options.blocked,
        instances: this.firewallInstances(),
      });
    });
    this.rules = next.catch(() => undefined);
    return next;
  }

  private allocate(instanceId: string, app: string, previous: string | undefined): number {
    const held = this.allocated.get(instanceId);
    if (held !== undefined) return held.address;
    const taken = new Set([...this.allocated.values()].map((a) => a.address));
    const wanted = previous === undefined ? undefined : parseIpv4(previous);
    if (wanted !== undefined && !taken.has(wanted) && [...instanceAddresses(this.subnet)].includes(wanted)) {
      this.allocated.set(instanceId, { address: wanted, app });
      return wanted;
    }
    for (const candidate of instanceAddresses(this.subnet)) {
      if (!taken.has(candidate)) {
        this.allocated.set(instanceId, { address: candidate, app });
        return candidate;
      }
    }
    throw new NetworkError(`the node subnet ${formatSubnet(this.subnet)} has no free address left (${taken.size} in use)`);
  }

  private async ensureBridge(): Promise<void> {
    const bridge = this.options.bridge;
    if (!(await this.deviceExists(bridge))) {
      await this.ip(['link', 'add', 'name', bridge, 'type', 'bridge'], `create the bridge ${bridge}`);
    }
    await this.ip(['link', 'set', 'dev', bridge, 'address', bridgeMacFor(bridge)], `give the bridge ${bridge} its fixed MAC`);
    await this.ip(['addr', 'replace', `${this.gateway}/${this.subnet.prefixLength}`, 'dev', bridge], `give the bridge ${bridge} the address ${this.gateway}`);
    await this.ip(['link', 'set', 'dev', bridge, 'up'], `bring the bridge ${bridge} up`);
    this.options.log.info({ bridge, subnet: formatSubnet(this.subnet), gateway: this.gateway }, 'node network ready');
  }

  private async devices(): Promise<string[]> {
    const { stdout } = await this.run(['-json', 'link', 'show'], 'list network devices');
    return (JSON.parse(stdout) as Array<{ ifname: string }>).map((link) => link.ifname);
  }

  private async deviceExists(name: string): Promise<boolean> {
    return (await this.devices()).includes(name);
  }

  private async ip(args: readonly string[], what: string): Promise<void> {
    await this.run(args, what);
  }

  private async run(args: readonly string[], what: string): Promise<{ stdout: string }> {
    try {
      const namespace = this.options.namespace === undefined ? [] : ['-n', this.options.namespace];
      return await exec('ip', [...namespace, ...args]);
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
      throw new NetworkError(`could not ${what}: ${stderr || (error as Error).message}`, { cause: error });
    }
  }
}
