// The node's nftables rules for its VMs: NAT to the outside, apps kept apart, no spoofing, and the
// node itself closed to its guests. The agent owns two tables named `shellwego` (inet and bridge
// family) and nothing else; every change replaces both whole in one `nft -f -` transaction built
// from the instances attached now, so a rule can never outlive its instance and a restarted agent
// rebuilds exactly what its adopted instances need.
//
// Why two families: frames between two TAPs on the bridge are switched at layer 2 and never reach
// the inet hooks, so isolation between guests and anti-spoofing live in the bridge family (its
// prerouting sees every frame a TAP sends, to another guest or to the node). The inet family sees
// what is routed: to the node (input), through it (forward) and NAT on the way out.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { promisify } from 'node:util';
import { NetworkError } from './network-error.js';

const exec = promisify(execFile);

export const FIREWALL_TABLE = 'shellwego';
/** Every TAP device name starts with this (instance-identity.ts): an unknown one is dropped. */
const TAP_WILDCARD = 'swt*';

/** One attached instance, as the rules see it. */
export interface FirewallInstance {
  readonly instanceId: string;
  readonly app: string;
  readonly tap: string;
  readonly mac: string;
  readonly address: string;
}

export interface FirewallSpec {
  readonly bridge: string;
  /** The node subnet in CIDR form, e.g. "10.88.0.0/24". */
  readonly subnet: string;
  /** IPv4 addresses or CIDRs guests may not reach through the node (the control services, a management network). */
  readonly blocked: readonly string[];
  readonly instances: readonly FirewallInstance[];
}

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** "a.b.c.d" or "a.b.c.d/n" with n from 0 to 32. */
export function isIpv4AddressOrCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  return rest.length === 0 && isIPv4(address) && (prefix === undefined || (/^\d{1,2}$/.test(prefix) && Number(prefix) <= 32));
}

function checkedCidr(value: string, what: string): string {
  if (!isIpv4AddressOrCidr(value)) throw new NetworkError(`${what}: ${JSON.stringify(value)} is not an IPv4 address or CIDR`);
  return value;
}

function checkedInstance(instance: FirewallInstance): FirewallInstance {
  if (!IFNAME.test(instance.tap)) throw new NetworkError(`TAP device name ${JSON.stringify(instance.tap)} is not a valid interface name`);
  if (!MAC.test(instance.mac)) throw new NetworkError(`MAC ${JSON.stringify(instance.mac)} is not a lower-case colon-separated MAC`);
  if (!isIPv4(instance.address)) throw new NetworkError(`instance address ${JSON.stringify(instance.address)} is not an IPv4 address`);
  return instance;
}

/** The set holding one app's instance addresses: named by a hash (app names need not be nft identifiers). */
export function appSetName(app: string): string {
  return `app_${createHash('sha256').update(app).digest('hex').slice(0, 16)}`;
}

function elements(values: readonly string[]): string {
  return values.length === 0 ? '' : ` elements = { ${values.join(', ')} };`;
}

/**
 * The whole ruleset as one nft script. Declaring each table before deleting it makes the delete
 * succeed whether or not the table exists, and the script is one transaction: the old rules stay
 * in force until the new ones are in, and a script nft refuses changes nothing.
 */
export function firewallRuleset(spec: FirewallSpec): string {
  if (!IFNAME.test(spec.bridge)) throw new NetworkError(`bridge name ${JSON.stringify(spec.bridge)} is not a valid interface name`);
  const subnet = checkedCidr(spec.subnet, 'node subnet');
  const blocked = spec.blocked.map((b) => checkedCidr(b, 'blocked address'));
  const instances = spec.instances.map(checkedInstance);
  const bridge = JSON.stringify(spec.bridge);
  const apps = new Map<string, string[]>();
  for (const instance of instances) apps.set(instance.app, [...(apps.get(instance.app) ?? []), instance.address]);

  const appSets = [...apps].map(([app, addresses]) => `  set ${appSetName(app)} { type ipv4_addr;${elements(addresses)} }`);
  // A TAP may send only from its own MAC and address (ARP included); anything but IPv4 and ARP is
  // dropped (no IPv6 path around the IPv4 rules). A TAP no instance holds sends nothing.
  const antiSpoof = instances.flatMap((i) => {
    const tap = JSON.stringify(i.tap);
    return [
      `    iifname ${tap} ether saddr != ${i.mac} drop`,
      `    iifname ${tap} ether type ip ip saddr != ${i.address} drop`,
      `    iifname ${tap} ether type arp arp saddr ether != ${i.mac} drop`,
      `    iifname ${tap} ether type arp arp saddr ip != ${i.address} drop`,
      `    iifname ${tap} ether type != { ip, arp } drop`,
      `    iifname ${tap} accept`,
    ];
  });
  const sameApp = [...apps.keys()].map((app) => `    ether type ip ip saddr @${appSetName(app)} ip daddr @${appSetName(app)} accept`);

  return [
    `table inet ${FIREWALL_TABLE} {}`,
    `delete table inet ${FIREWALL_TABLE}`,
    `table inet ${FIREWALL_TABLE} {`,
    `  set blocked { type ipv4_addr; flags interval; auto-merge;${elements(blocked)} }`,
    // The node's own addresses (the agent's API, the control services on this host, every other
    // interface) are closed to guests: only answers to connections the node opened get in.
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${bridge} ct state established,related accept`,
    `    iifname ${bridge} drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // Bridged frames (seen here only with br_netfilter) were judged in the bridge table.
    `    iifname ${bridge} oifname ${bridge} accept`,
    `    iifname ${bridge} ip daddr @blocked drop`,
    `    iifname ${bridge} accept`,
    `    oifname ${bridge} ct state established,related accept`,
    // Nobody outside opens connections to a guest through the node (the ingress runs on the node).
    `    oifname ${bridge} drop`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${subnet} oifname != ${bridge} masquerade`,
    '  }',
    '}',
    `table bridge ${FIREWALL_TABLE} {}`,
    `delete table bridge ${FIREWALL_TABLE}`,
    `table bridge ${FIREWALL_TABLE} {`,
    ...appSets,
    '  chain prerouting {',
    '    type filter hook prerouting priority filter; policy accept;',
    ...antiSpoof,
    `    iifname "${TAP_WILDCARD}" drop`,
    '  }',
    // Guest to guest: IPv4 only between instances of the same app (ARP passes; its sender was checked above).
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...sameApp,
    `    iifname "${TAP_WILDCARD}" oifname "${TAP_WILDCARD}" ether type ip drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Runs nft (and sysctl) in the agent's network namespace, or in a named one. */
export class NodeFirewall {
  constructor(private readonly namespace: string | undefined) {}

  /** Replaces the agent's tables with the rules for these instances, atomically. */
  async apply(spec: FirewallSpec): Promise<void> {
    await this.run('nft', ['-f', '-'], 'load the nftables rules', firewallRuleset(spec));
  }

  /** Routing for the guests (per network namespace): their traffic to the outside is forwarded and masqueraded. */
  async enableForwarding(): Promise<void> {
    await this.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], 'turn on IPv4 forwarding');
  }

  /** Removes the agent's tables (tests and uninstall; a restarting agent keeps them). */
  async remove(): Promise<void> {
    await this.run(
      'nft',
      ['-f', '-'],
      'remove the nftables rules',
      [
        `table inet ${FIREWALL_TABLE} {}`,
        `delete table inet ${FIREWALL_TABLE}`,
        `table bridge ${FIREWALL_TABLE} {}`,
        `delete table bridge ${FIREWALL_TABLE}`,
        '',
      ].join('\n'),
    );
  }

  private async run(command: string, args: readonly string[], what: string, input?: string): Promise<void> {
    const [file, argv] = this.namespace === undefined ? [command, args] : ['ip', ['netns', 'exec', this.namespace, command, ...args]];
    try {
      const child = exec(file, argv);
      if (input !== undefined) child.child.stdin?.end(input);
      await child;
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
      throw new NetworkError(`could not ${what}: ${stderr || (error as Error).message}`, { cause: error });
    }
  }
}
