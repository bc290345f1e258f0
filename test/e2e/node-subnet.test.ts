// The node's subnet comes from the scheduler (issue 12), with real processes and a network
// namespace the test makes: a node agent with networking on and no NETWORK_SUBNET joins, gets
// its subnet out of the scheduler's CLUSTER_CIDR, builds its bridge with the subnet's first
// address, and keeps the subnet in its state dir, so after a restart with no scheduler to
// reach it builds the same bridge again. Nothing outside the namespace is touched.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '@shellwego/testing/free-port';
import { missingNetns, NetnsSet } from '@shellwego/testing/netns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodePlatform } from './support/node-platform.js';

const skip = await missingNetns();
const netns = new NetnsSet();
let p: NodePlatform;

beforeAll(async () => {
  if (skip !== undefined) return;
  p = await NodePlatform.start({ SHELLWEGO_SCHEDULER_CLUSTER_CIDR: '10.77.0.0/16', SHELLWEGO_SCHEDULER_NODE_SUBNET_PREFIX: '25' });
}, 180_000);
afterAll(async () => {
  await p?.stop();
  await netns.remove();
  expect(await netns.leftovers()).toEqual([]);
});

/** The IPv4 addresses (CIDR) of the bridge swg0 in `ns`, asked again until `expected` shows or 30 s pass. */
async function bridgeAddresses(ns: string, expected: string): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const shown = await netns.run(ns, ['ip', '-j', '-4', 'addr', 'show', 'dev', 'swg0']);
    const addresses =
      shown.exitCode === 0
        ? (JSON.parse(shown.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>).flatMap((l) =>
            l.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
          )
        : [];
    if (addresses.includes(expected) || Date.now() > deadline) return addresses;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe.skipIf(skip !== undefined)('node subnet from the scheduler', () => {
  it('builds the bridge from the subnet the scheduler gave, and again from the kept one when the scheduler is out of reach', { timeout: 150_000 }, async () => {
    const ns = await netns.add('node');
    const agent = await p.addAgent({
      key: 'subnet',
      driver: 'process',
      env: { SHELLWEGO_NODE_AGENT_NETWORK: 'true', SHELLWEGO_NODE_AGENT_NETWORK_NAMESPACE: ns },
    });
    const { nodes } = await p.nodes.listNodes({});
    const subnet = nodes.find((n) => n.id === agent.nodeId)?.subnet;
    expect(subnet).toBe('10.77.0.0/25');
    expect(await bridgeAddresses(ns, '10.77.0.1/25')).toEqual(['10.77.0.1/25']);
    expect(JSON.parse(await readFile(join(agent.stateDir, 'node-subnet.json'), 'utf8'))).toEqual({ subnet: '10.77.0.0/25' });

    // Restarted with the bridge gone and no scheduler to ask: the kept subnet builds it again.
    await p.platform.stopProcess('subnet');
    await netns.ip(ns, ['link', 'del', 'swg0']);
    await p.platform.restartProcess('subnet', { SHELLWEGO_NODE_AGENT_SCHEDULER_URLS: `https://127.0.0.1:${await freePort()}` });
    expect(await bridgeAddresses(ns, '10.77.0.1/25')).toEqual(['10.77.0.1/25']);
  });
});
