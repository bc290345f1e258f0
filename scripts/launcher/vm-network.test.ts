import { describe, expect, it } from 'vitest';
import { chooseNetwork, type NetworkHost } from './vm-network.js';

const capable: NetworkHost = {
  env: {},
  realVms: true,
  uid: 0,
  exists: (path) => path === '/dev/net/tun',
  findExecutable: (name) => `/usr/sbin/${name}`,
};

describe("npm start's choice of the VM network", () => {
  it('turns it on for root with real VMs, /dev/net/tun, ip and nft', () => {
    expect(chooseNetwork(capable).enabled).toBe(true);
  });

  it('says what is missing when it stays off', () => {
    const choice = chooseNetwork({ ...capable, uid: 1000, exists: () => false, findExecutable: (name) => (name === 'nft' ? undefined : `/usr/sbin/${name}`) });
    expect(choice.enabled).toBe(false);
    expect(choice.reason).toContain('root');
    expect(choice.reason).toContain('/dev/net/tun');
    expect(choice.reason).toContain('nft (Debian package nftables)');
    expect(choice.reason).not.toContain('iproute2');
    expect(chooseNetwork({ ...capable, realVms: false })).toMatchObject({ enabled: false, reason: expect.stringContaining('process driver') });
  });

  it('lets SHELLWEGO_NODE_AGENT_NETWORK decide either way (the launcher tests turn it off)', () => {
    expect(chooseNetwork({ ...capable, env: { SHELLWEGO_NODE_AGENT_NETWORK: 'false' } })).toEqual({
      enabled: false,
      reason: 'SHELLWEGO_NODE_AGENT_NETWORK=false',
    });
    expect(chooseNetwork({ ...capable, uid: 1000, env: { SHELLWEGO_NODE_AGENT_NETWORK: 'true' } }).enabled).toBe(true);
  });
});
