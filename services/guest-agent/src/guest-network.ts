// The VM's network interface, configured from the settings Run carries (never from a file on the
// host): address, MTU, link up, default route via the node's bridge, and the workload's resolv.conf.
// busybox's `ip` does the netlink work (Node has no netlink API). Re-applying the same settings
// (a restart with new secrets) is harmless: every step replaces what is there.
import { execFile } from 'node:child_process';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@shellwego/kit/log';
import { WorkloadError } from './workload-error.js';

const exec = promisify(execFile);

export interface NetworkSettings {
  readonly interface: string;
  readonly addressCidr: string;
  readonly gateway: string;
  readonly dnsServers: readonly string[];
  readonly mtu: number;
}

const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const MIN_MTU = 576;
const MAX_MTU = 65_535;

/** Refuses settings that cannot be applied, before anything is changed. */
export function validateNetwork(settings: NetworkSettings): void {
  if (!INTERFACE_NAME.test(settings.interface)) {
    throw new WorkloadError('invalid-argument', `network interface name ${JSON.stringify(settings.interface)} is not a valid Linux interface name`);
  }
  const [address, prefix, ...rest] = settings.addressCidr.split('/');
  const prefixLength = Number(prefix);
  if (
    address === undefined ||
    !isIPv4(address) ||
    rest.length > 0 ||
    !Number.isInteger(prefixLength) ||
    prefixLength < 1 ||
    prefixLength > 32 ||
    prefix === ''
  ) {
    throw new WorkloadError(
      'invalid-argument',
      `network address ${JSON.stringify(settings.addressCidr)} is not an IPv4 address with a prefix length, e.g. 10.88.0.2/24`,
    );
  }
  if (settings.gateway !== '' && !isIPv4(settings.gateway)) {
    throw new WorkloadError('invalid-argument', `network gateway ${JSON.stringify(settings.gateway)} is not an IPv4 address`);
  }
  for (const server of settings.dnsServers) {
    if (!isIPv4(server)) throw new WorkloadError('invalid-argument', `DNS server ${JSON.stringify(server)} is not an IPv4 address`);
  }
  if (settings.mtu !== 0 && (settings.mtu < MIN_MTU || settings.mtu > MAX_MTU)) {
    throw new WorkloadError('invalid-argument', `network MTU ${settings.mtu} is outside ${MIN_MTU}..${MAX_MTU}`);
  }
}

export async function configureNetwork(busybox: string, settings: NetworkSettings, workloadRoot: string | undefined, log: Logger): Promise<void> {
  validateNetwork(settings);
  if (workloadRoot === undefined) {
    // Process mode runs on the host: configuring its interfaces is never the agent's business.
    throw new WorkloadError('failed-precondition', 'network settings need VM mode (a root filesystem device); this agent runs the workload on the host');
  }
  const dev = settings.interface;
  try {
    await access(`/sys/class/net/${dev}`);
  } catch {
    throw new WorkloadError(
      'failed-precondition',
      `network interface ${dev} does not exist in this VM (is a virtio-net device attached and the virtio_net module loaded?)`,
    );
  }
  const ip = async (args: readonly string[], what: string) => {
    try {
      await exec(busybox, ['ip', ...args]);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
      throw new WorkloadError('failed-precondition', `could not ${what}: ${stderr || (err as Error).message}`);
    }
  };
  if (settings.mtu !== 0) await ip(['link', 'set', 'dev', dev, 'mtu', String(settings.mtu)], `set the MTU of ${dev}`);
  await ip(['addr', 'replace', settings.addressCidr, 'dev', dev], `give ${dev} the address ${settings.addressCidr}`);
  await ip(['link', 'set', 'dev', dev, 'up'], `bring ${dev} up`);
  if (settings.gateway !== '') await ip(['route', 'replace', 'default', 'via', settings.gateway, 'dev', dev], `route via ${settings.gateway}`);
  if (settings.dnsServers.length > 0) {
    // In the tmpfs overlay: the image's own file is left untouched underneath.
    // The old entry goes first so a symlink in the image never redirects the write outside the root.
    const resolvConf = join(workloadRoot, 'etc', 'resolv.conf');
    await mkdir(join(workloadRoot, 'etc'), { recursive: true, mode: 0o755 });
    await rm(resolvConf, { force: true });
    await writeFile(resolvConf, settings.dnsServers.map((s) => `nameserver ${s}\n`).join(''), { mode: 0o644, flag: 'wx' });
  }
  log.info({ interface: dev, address: settings.addressCidr, gateway: settings.gateway || undefined, mtu: settings.mtu || undefined }, 'network configured');
}
