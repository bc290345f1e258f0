// The ruleset is nft script text built from names and addresses; everything that goes into it is
// checked first, so no setting or state file entry can add a rule of its own.
import { describe, expect, it } from 'vitest';
import { NetworkError } from './network-error.js';
import { type FirewallSpec, firewallRuleset, isIpv4AddressOrCidr } from './node-firewall.js';

const spec: FirewallSpec = {
  bridge: 'swg0',
  subnet: '10.88.0.0/24',
  blocked: ['192.0.2.7', '10.0.0.0/8'],
  instances: [{ instanceId: 'i-1', app: 'shop', tap: 'swt0123456789ab', mac: '02:01:02:03:04:05', address: '10.88.0.2' }],
};

describe('the node firewall ruleset', () => {
  it('refuses names and addresses that would change the script', () => {
    const instance = spec.instances[0] as FirewallSpec['instances'][number];
    const bad: FirewallSpec[] = [
      { ...spec, bridge: 'swg0" accept' },
      { ...spec, subnet: '10.88.0.0/24 accept' },
      { ...spec, blocked: ['0.0.0.0/0 }; chain x {'] },
      { ...spec, instances: [{ ...instance, tap: 'swt1;drop' }] },
      { ...spec, instances: [{ ...instance, mac: '02:01:02:03:04:05 accept' }] },
      { ...spec, instances: [{ ...instance, address: '10.88.0.2 accept' }] },
    ];
    for (const s of bad) expect(() => firewallRuleset(s), JSON.stringify(s)).toThrow(NetworkError);
  });

  it('accepts IPv4 addresses and CIDRs only', () => {
    for (const ok of ['10.1.2.3', '10.0.0.0/8', '0.0.0.0/0', '192.0.2.1/32']) expect(isIpv4AddressOrCidr(ok), ok).toBe(true);
    for (const no of ['10.1.2', '10.0.0.0/33', '10.0.0.0/', '::1', '10.0.0.0/8/8', 'example.com', '10.0.0.0/-1'])
      expect(isIpv4AddressOrCidr(no), no).toBe(false);
  });

  it('names app sets by a hash, so any app name is safe in the script', () => {
    const script = firewallRuleset({ ...spec, instances: [{ ...(spec.instances[0] as FirewallSpec['instances'][number]), app: 'a b"; flush ruleset' }] });
    expect(script).not.toContain('flush ruleset');
    expect(script).toMatch(/set app_[0-9a-f]{16} \{ type ipv4_addr; elements = \{ 10\.88\.0\.2 \}; \}/);
  });
});
