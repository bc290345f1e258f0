// The node network from the agent's settings (NETWORK, NETWORK_BRIDGE, NETWORK_SUBNET, NETWORK_DNS,
// NETWORK_BLOCKED, NETWORK_NAMESPACE).
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Logger } from '@shellwego/kit/log';
import { NetworkError } from './network-error.js';
import { isIpv4AddressOrCidr } from './node-firewall.js';
import { NodeNetwork } from './node-network.js';

export interface NodeNetworkSettings {
  readonly networkBridge: string;
  readonly networkSubnet: string;
  readonly networkDns: string;
  readonly networkBlocked: string;
  readonly networkNamespace: string | undefined;
  /** The control services this agent talks to: guests may not reach them through the node. */
  readonly schedulerUrls: readonly string[];
  readonly secretsUrl: string;
  readonly registryUrl: string;
}

function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The IPv4 addresses a control service URL's host stands for (a name is resolved once, at start). */
async function addressesOf(url: string): Promise<string[]> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (isIPv4(host)) return [host];
  const found = await lookup(host, { all: true, family: 4 }).catch((error: unknown) => {
    throw new NetworkError(`could not resolve the control service host ${host} (guests must not reach it): ${(error as Error).message}`, { cause: error });
  });
  return found.map((a) => a.address);
}

export async function openNodeNetwork(config: NodeNetworkSettings, log: Logger): Promise<NodeNetwork> {
  const dnsServers = commaList(config.networkDns);
  const bad = dnsServers.find((s) => !isIPv4(s));
  if (bad !== undefined) throw new NetworkError(`NETWORK_DNS: ${JSON.stringify(bad)} is not an IPv4 address`);
  const blocked = commaList(config.networkBlocked);
  const badBlocked = blocked.find((s) => !isIpv4AddressOrCidr(s));
  if (badBlocked !== undefined) throw new NetworkError(`NETWORK_BLOCKED: ${JSON.stringify(badBlocked)} is not an IPv4 address or CIDR`);
  const controlServices = await Promise.all([...config.schedulerUrls, config.secretsUrl, config.registryUrl].map(addressesOf));
  return NodeNetwork.open({
    bridge: config.networkBridge,
    subnet: config.networkSubnet,
    dnsServers,
    blocked: [...new Set([...controlServices.flat(), ...blocked])],
    namespace: config.networkNamespace,
    log: log.child({ component: 'network' }),
  });
}
