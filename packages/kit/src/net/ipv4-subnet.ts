// IPv4 subnets as 32-bit numbers: parsing "a.b.c.d/n", naming the addresses in one and splitting
// one into smaller ones (the cluster CIDR into node subnets). Instance addresses are IPv4 only (the
// guest's eth0 settings and the bridge are IPv4).
import { isIPv4 } from 'node:net';

export interface Ipv4Subnet {
  /** The network address as an unsigned 32-bit number. */
  readonly base: number;
  readonly prefixLength: number;
}

export function parseIpv4(address: string): number | undefined {
  if (!isIPv4(address)) return undefined;
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** A subnet with room for a gateway and at least one instance (/30 or larger); undefined when malformed. */
export function parseIpv4Subnet(cidr: string): Ipv4Subnet | undefined {
  const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(cidr);
  if (match === null) return undefined;
  const address = parseIpv4(match[1] as string);
  const prefixLength = Number(match[2]);
  if (address === undefined || prefixLength < 1 || prefixLength > 30) return undefined;
  const base = address - (address % 2 ** (32 - prefixLength));
  return { base, prefixLength };
}

export function subnetSize(subnet: Ipv4Subnet): number {
  return 2 ** (32 - subnet.prefixLength);
}

export function formatSubnet(subnet: Ipv4Subnet): string {
  return `${formatIpv4(subnet.base)}/${subnet.prefixLength}`;
}

/** The node's own address on its bridge: the subnet's first host address. */
export function gatewayOf(subnet: Ipv4Subnet): number {
  return subnet.base + 1;
}

/** Addresses an instance may get: every host address after the gateway, broadcast excluded. */
export function* instanceAddresses(subnet: Ipv4Subnet): Generator<number> {
  const last = subnet.base + subnetSize(subnet) - 2;
  for (let n = gatewayOf(subnet) + 1; n <= last; n++) yield n;
}

/** How many subnets of `prefixLength` `subnet` splits into (0 when they would not be smaller or equal). */
export function subnetCount(subnet: Ipv4Subnet, prefixLength: number): number {
  return prefixLength < subnet.prefixLength ? 0 : 2 ** (prefixLength - subnet.prefixLength);
}

/** The `index`th subnet of `prefixLength` inside `subnet`, counted from its start. */
export function subnetAt(subnet: Ipv4Subnet, prefixLength: number, index: number): Ipv4Subnet {
  if (!Number.isInteger(index) || index < 0 || index >= subnetCount(subnet, prefixLength)) {
    throw new RangeError(`${formatSubnet(subnet)} has no /${prefixLength} number ${index}`);
  }
  return { base: subnet.base + index * 2 ** (32 - prefixLength), prefixLength };
}

/** The position of `inner` among the subnets of its length inside `outer`; undefined when it is not one of them. */
export function subnetIndex(outer: Ipv4Subnet, inner: Ipv4Subnet): number | undefined {
  if (inner.prefixLength < outer.prefixLength || inner.base < outer.base || inner.base >= outer.base + subnetSize(outer)) return undefined;
  return (inner.base - outer.base) / subnetSize(inner);
}
