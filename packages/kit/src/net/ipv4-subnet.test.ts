import { describe, expect, it } from 'vitest';
import { formatIpv4, formatSubnet, gatewayOf, instanceAddresses, parseIpv4, parseIpv4Subnet, subnetAt, subnetCount, subnetIndex } from './ipv4-subnet.js';

describe('IPv4 subnets', () => {
  it('parses a CIDR to its network address, whatever host bits it was written with', () => {
    const subnet = parseIpv4Subnet('10.88.3.77/24');
    expect(subnet && formatSubnet(subnet)).toBe('10.88.3.0/24');
    expect(subnet && formatIpv4(gatewayOf(subnet))).toBe('10.88.3.1');
  });

  it('refuses what is not an IPv4 CIDR with room for a gateway and an instance', () => {
    for (const bad of ['10.88.0.0', '10.88.0.0/', '10.88.0.0/31', '10.88.0.0/0', '10.88.0.256/24', '::1/64', '10.88.0.0/24x', ' 10.88.0.0/24']) {
      expect(parseIpv4Subnet(bad), bad).toBeUndefined();
    }
  });

  it('offers every host address after the gateway, not the broadcast address', () => {
    const subnet = parseIpv4Subnet('192.168.5.0/29');
    expect(subnet).toBeDefined();
    expect([...instanceAddresses(subnet ?? { base: 0, prefixLength: 29 })].map(formatIpv4)).toEqual([
      '192.168.5.2',
      '192.168.5.3',
      '192.168.5.4',
      '192.168.5.5',
      '192.168.5.6',
    ]);
  });

  it('round-trips addresses above 127.255.255.255 (unsigned arithmetic)', () => {
    expect(formatIpv4(parseIpv4('250.1.2.3') ?? 0)).toBe('250.1.2.3');
  });

  it('splits a cluster CIDR into node subnets and finds a subnet among them', () => {
    const cluster = parseIpv4Subnet('10.88.0.0/16');
    if (cluster === undefined) throw new Error('unparsed');
    expect(subnetCount(cluster, 24)).toBe(256);
    expect(subnetCount(cluster, 8)).toBe(0);
    expect(formatSubnet(subnetAt(cluster, 24, 0))).toBe('10.88.0.0/24');
    expect(formatSubnet(subnetAt(cluster, 24, 255))).toBe('10.88.255.0/24');
    expect(formatSubnet(subnetAt(cluster, 26, 5))).toBe('10.88.1.64/26');
    expect(() => subnetAt(cluster, 24, 256)).toThrow(RangeError);
    const inner = parseIpv4Subnet('10.88.7.0/24');
    expect(inner && subnetIndex(cluster, inner)).toBe(7);
    const outside = parseIpv4Subnet('10.89.0.0/24');
    expect(outside && subnetIndex(cluster, outside)).toBeUndefined();
  });
});
