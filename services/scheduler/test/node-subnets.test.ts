// Node subnets through real schedulers on Postgres (active and standby both answer JoinNode):
// each joining node gets a subnet of its own out of the cluster CIDR, concurrent joins never
// share one, an exhausted CIDR refuses the join with RESOURCE_EXHAUSTED naming the setting (the
// token stays usable), a removed node's subnet is given again, and a node that joined before
// subnets were given out gets one at its next session, sent before anything else; one registered at
// its first Hello when none is left is told so and keeps its session.
import { readFile } from 'node:fs/promises';
import { Code, ConnectError } from '@connectrpc/connect';
import { createPostgresTestDatabase, type PostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { FakeNode, type JoinedIdentity } from '@shellwego/testing/scheduler/fake-node';
import { HEARTBEAT_INTERVAL_MS, SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const skip = await postgresUnavailable();

let database: PostgresTestDatabase;
let harness: SchedulerHarness;
let standbyUrl: string;
beforeAll(async () => {
  database = await createPostgresTestDatabase();
  // Room for exactly four nodes: 10.99.0.0/28 in /30s.
  harness = await SchedulerHarness.start({
    database: database.url,
    env: { SHELLWEGO_SCHEDULER_CLUSTER_CIDR: '10.99.0.0/28', SHELLWEGO_SCHEDULER_NODE_SUBNET_PREFIX: '30' },
  });
  standbyUrl = (await harness.startStandby()).url;
}, 180_000);
afterAll(async () => {
  await harness?.stop();
  await database?.drop();
});

const capacity = { cpuMillis: 1000, memoryMib: 1024, maxInstances: 4 };

async function outcome(join: Promise<JoinedIdentity>): Promise<JoinedIdentity | ConnectError> {
  return join.catch((error: unknown) => ConnectError.from(error));
}

describe.skipIf(skip !== undefined)('node subnets', () => {
  const joined: JoinedIdentity[] = [];
  const refusedTokens: string[] = [];

  it('gives concurrent joins on both schedulers distinct subnets, and refuses the ones past the cluster CIDR', async () => {
    const tokens = await Promise.all(Array.from({ length: 6 }, () => harness.token()));
    const results = await Promise.all(
      tokens.map((token, i) => outcome(FakeNode.join(i % 2 === 0 ? harness.url : standbyUrl, harness.caPem, token, { hostname: `net-${i}` }))),
    );
    results.forEach((result, i) => {
      if (result instanceof ConnectError) {
        expect(result.code).toBe(Code.ResourceExhausted);
        expect(result.rawMessage).toContain('the cluster CIDR 10.99.0.0/28 has no free /30 subnet left for a new node (all 4 are taken)');
        expect(result.rawMessage).toContain('SHELLWEGO_SCHEDULER_CLUSTER_CIDR');
        refusedTokens.push(tokens[i] as string);
      } else {
        joined.push(result);
      }
    });
    expect(joined.map((j) => j.response.subnet).sort()).toEqual(['10.99.0.0/30', '10.99.0.12/30', '10.99.0.4/30', '10.99.0.8/30']);
    expect(refusedTokens).toHaveLength(2);

    const { nodes } = await harness.nodeService.listNodes({});
    expect(Object.fromEntries(nodes.map((n) => [n.id, n.subnet]))).toEqual(Object.fromEntries(joined.map((j) => [j.nodeId, j.response.subnet])));
  });

  it("gives a removed node's subnet to the next node, with a token an exhausted join left unused", async () => {
    const gone = joined.shift() as JoinedIdentity;
    await harness.nodeService.removeNode({ nodeId: gone.nodeId });
    const next = await FakeNode.join(harness.url, harness.caPem, refusedTokens[0] as string, { hostname: 'net-next' });
    expect(next.response.subnet).toBe(gone.response.subnet);
    joined.push(next);
    const full = await outcome(FakeNode.join(harness.url, harness.caPem, refusedTokens[1] as string, { hostname: 'net-full' }));
    expect(full instanceof ConnectError && full.code).toBe(Code.ResourceExhausted);
  });

  it('sends the subnet first on every session, and gives one to a node that joined before subnets were given out', async () => {
    const identity = joined[0] as JoinedIdentity;
    // As a row written before migration 0007: no subnet.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query('UPDATE scheduler.node SET subnet = NULL WHERE id = $1', [identity.nodeId]);
    } finally {
      await client.end();
    }
    expect((await harness.nodeService.listNodes({})).nodes.find((n) => n.id === identity.nodeId)?.subnet).toBe('');

    const node = new FakeNode({
      nodeId: identity.nodeId,
      tls: identity.tls,
      schedulerUrls: [harness.url],
      capacity,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    });
    harness.nodes.push(node);
    node.start();
    const first = await node.waitFor(() => node.received[0], 10_000, 'the first session message');
    expect(first.msg.case).toBe('network');
    const subnet = first.msg.case === 'network' ? first.msg.value.subnet : '';
    expect(subnet).toMatch(/^10\.99\.0\.(0|4|8|12)\/30$/);
    const listed = (await harness.nodeService.listNodes({})).nodes;
    expect(listed.find((n) => n.id === identity.nodeId)?.subnet).toBe(subnet);
    expect(new Set(listed.map((n) => n.subnet)).size).toBe(listed.length);
  });

  it('starts the first session of a node registered at its Hello (a CA-issued certificate, no join) with its subnet, or an empty one when none is left', async () => {
    const pki = harness.platform.pki;
    const node = new FakeNode({
      nodeId: 'local',
      tls: {
        caPem: harness.caPem,
        certPem: await readFile(pki.processes['node-agent'].cert, 'utf8'),
        keyPem: await readFile(pki.processes['node-agent'].key, 'utf8'),
      },
      schedulerUrls: [harness.url],
      capacity: { cpuMillis: 4000, memoryMib: 4096, maxInstances: 4 },
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    });
    harness.nodes.push(node);
    // Pending until this node says Hello: it is placed there in the same unit of work, and its Assign must come after the subnet.
    await harness.deploy('big', spec({ resources: { cpuMillis: 3000, memoryMib: 3072 } }));
    node.start();
    await node.waitForAssign((a) => a.spec?.app === 'big', 10_000, 'the Assign of big');
    // The cluster CIDR is full: an empty subnet, the session kept, and a log line saying why.
    const full = await node.waitFor(() => node.received[0], 10_000, 'the first session message');
    expect(full.msg.case === 'network' && full.msg.value.subnet).toBe('');
    expect((await harness.nodeService.listNodes({})).nodes.find((n) => n.id === 'local')).toMatchObject({ subnet: '' });
    expect(node.connectedUrl).toBe(harness.url);
    expect(harness.lines().some((l) => l.includes('the node gets no subnet: its instances run without network') && l.includes('"node":"local"'))).toBe(true);

    // Room again: the next session starts with the freed subnet.
    await node.stop();
    const gone = joined.pop() as JoinedIdentity;
    await harness.nodeService.removeNode({ nodeId: gone.nodeId });
    const seen = node.received.length;
    node.start();
    const next = await node.waitFor(() => node.received[seen], 10_000, 'the next session message');
    expect(next.msg.case === 'network' && next.msg.value.subnet).toBe(gone.response.subnet);
  });
});
