// Whether `npm start`'s node agent gets the VM network (bridge, TAPs, nftables): on when this host
// can have it (real VMs, root, /dev/net/tun, iproute2 and nftables), off otherwise, with the
// reason printed. SHELLWEGO_NODE_AGENT_NETWORK set either way is the operator's choice and wins;
// the launcher tests set it to false, so they never touch the host's interfaces or rules.
import { existsSync } from 'node:fs';
import { findExecutable } from '@shellwego/kit/process';

export const NETWORK_ENV = 'SHELLWEGO_NODE_AGENT_NETWORK';

export interface NetworkChoice {
  readonly enabled: boolean;
  /** Why, in words for the operator. */
  readonly reason: string;
}

export interface NetworkHost {
  readonly env: NodeJS.ProcessEnv;
  /** False: the agent runs the process driver, whose workloads are host processes with no NIC. */
  readonly realVms: boolean;
  readonly uid: number;
  readonly exists: (path: string) => boolean;
  readonly findExecutable: (name: string) => string | undefined;
}

export function thisHost(env: NodeJS.ProcessEnv, realVms: boolean): NetworkHost {
  return {
    env,
    realVms,
    uid: process.getuid?.() ?? -1,
    exists: existsSync,
    findExecutable: (name) => findExecutable(name, env) ?? findExecutable(`/usr/sbin/${name}`) ?? findExecutable(`/sbin/${name}`),
  };
}

export function chooseNetwork(host: NetworkHost): NetworkChoice {
  const set = host.env[NETWORK_ENV];
  if (set !== undefined && set !== '') {
    const enabled = set === 'true';
    return { enabled, reason: `${NETWORK_ENV}=${set}` };
  }
  const lacking = [
    ...(host.realVms ? [] : ['real VMs (the node agent runs the process driver)']),
    ...(host.uid === 0 ? [] : ['root (bridge, TAP devices and nftables rules need CAP_NET_ADMIN)']),
    ...(host.exists('/dev/net/tun') ? [] : ['/dev/net/tun']),
    ...(host.findExecutable('ip') === undefined ? ['ip (Debian package iproute2)'] : []),
    ...(host.findExecutable('nft') === undefined ? ['nft (Debian package nftables)'] : []),
  ];
  return lacking.length === 0
    ? { enabled: true, reason: `running as root with /dev/net/tun and nftables (${NETWORK_ENV}=false turns it off)` }
    : { enabled: false, reason: `needs ${lacking.join(', ')}; deploy/setup-host.sh installs the packages` };
}
