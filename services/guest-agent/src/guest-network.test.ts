import { describe, expect, it } from 'vitest';
import { validateNetwork } from './guest-network.js';

const good = { interface: 'eth0', addressCidr: '10.88.0.2/24', gateway: '10.88.0.1', dnsServers: ['10.88.0.1'], mtu: 0 };

describe('guest network settings', () => {
  it('accepts an address with its prefix, a gateway, resolvers and no MTU', () => {
    expect(() => validateNetwork(good)).not.toThrow();
    expect(() => validateNetwork({ ...good, gateway: '', dnsServers: [], mtu: 1400 })).not.toThrow();
  });

  it('refuses settings that cannot be applied, naming the field, as INVALID_ARGUMENT', () => {
    const cases: Array<[Partial<typeof good>, string]> = [
      [{ interface: 'eth0; reboot' }, 'interface name'],
      [{ interface: 'a-very-long-interface-name' }, 'interface name'],
      [{ addressCidr: '10.88.0.2' }, 'network address'],
      [{ addressCidr: '10.88.0.2/33' }, 'network address'],
      [{ addressCidr: '10.88.0.2/' }, 'network address'],
      [{ addressCidr: 'fe80::1/64' }, 'network address'],
      [{ gateway: 'gw' }, 'gateway'],
      [{ dnsServers: ['1.1.1.1', 'dns.example'] }, 'DNS server'],
      [{ mtu: 100 }, 'MTU'],
    ];
    for (const [change, words] of cases) {
      expect(() => validateNetwork({ ...good, ...change }), JSON.stringify(change)).toThrow(
        expect.objectContaining({ kind: 'invalid-argument', message: expect.stringContaining(words) }),
      );
    }
  });
});
