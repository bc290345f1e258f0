// The node network from the agent's settings (NETWORK, NETWORK_BRIDGE, NETWORK_SUBNET, NETWORK_DNS).
import { isIPv4 } from 'node:net';
import type { Logger } from '@shellwego/kit/log';
import { NetworkError, NodeNetwork } from './node-network.js';

export interface NodeNetworkSettings {
  readonly networkBridge: string;
  readonly networkSubnet: string;
  readonly networkDns: string;
  readonly networkNamespace: string | undefined;
}

export async function openNodeNetwork(config: NodeNetworkSettings, log: Logger): Promise<NodeNetwork> {
  const dnsServers = config.networkDns
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = dnsServers.find((s) => !isIPv4(s));
  if (bad !== undefined) throw new NetworkError(`NETWORK_DNS: ${JSON.stringify(bad)} is not an IPv4 address`);
  return NodeNetwork.open({
    bridge: config.networkBridge,
    subnet: config.networkSubnet,
    dnsServers,
    namespace: config.networkNamespace,
    log: log.child({ component: 'network' }),
  });
}
