// IPv4 subnet arithmetic shared by the scheduler (node subnets out of the cluster CIDR) and the node agent (instance addresses).
export {
  formatIpv4,
  formatSubnet,
  gatewayOf,
  type Ipv4Subnet,
  instanceAddresses,
  parseIpv4,
  parseIpv4Subnet,
  subnetAt,
  subnetCount,
  subnetIndex,
  subnetSize,
} from './ipv4-subnet.js';
