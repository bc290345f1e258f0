// End to end: a real scheduler process on Postgres places instances,
// persists them, and delivers the assignments over live mTLS sessions to 500
// simulated nodes. Measured from the first DeployApp until the last node has
// received its last assignment. Run directly (`npx tsx
// test/bench/scheduler-e2e.bench.ts`) or through `npm run bench scheduler-e2e`.
import { readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { AppSpecSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { CertificateAuthority } from '@shellwego/kit/pki';
import type { BenchResult, BenchTarget } from '@shellwego/testing/bench/bench-result';
import { runIfMain } from '@shellwego/testing/bench/run-bench';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { SchedulerHarness } from '@shellwego/testing/scheduler/scheduler-harness';

const NODES = 500;
const APPS = 10;
const REPLICAS = 500;
/** From the project's issues: placements stored and delivered end to end. */
const TARGET: BenchTarget = { on: 'value', bound: 'atLeast', value: 2_000, unit: 'placements/s' };
const EXPECTED = APPS * REPLICAS;
const ONE_BY_ONE = `${APPS} DeployApp calls one after the other`;
const AT_ONCE = `${APPS} DeployApp calls at once, ${EXPECTED} instances already placed`;
const throughputName = (how: string) => `end to end, ${how}: ${EXPECTED} instances placed, stored in Postgres and delivered to ${NODES} nodes`;
/** Heartbeats are not what is measured: keep them rare. */
const HEARTBEAT = '5s';

export async function run(): Promise<BenchResult[]> {
  const skip = await postgresUnavailable();
  if (skip !== undefined) return [ONE_BY_ONE, AT_ONCE].map((how) => ({ name: throughputName(how), target: TARGET, notRun: skip }));
  const database = await createPostgresTestDatabase();
  const harness = await SchedulerHarness.start({
    database: database.url,
    watchEvents: false,
    env: { SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL: HEARTBEAT, SHELLWEGO_SCHEDULER_HEARTBEAT_GRACE: '30s', SHELLWEGO_LOG_LEVEL: 'warn' },
  });
  try {
    const nodes = await connectNodes(harness);
    harness.registry.add('bench:1');
    const one = await deployAndDeliver(harness, nodes, 'one', async (deploy) => {
      for (let i = 0; i < APPS; i++) await deploy(i);
    });
    // The same again on a cluster already holding the first round's instances, all deploys at once.
    const many = await deployAndDeliver(harness, nodes, 'many', async (deploy) => {
      await Promise.all(Array.from({ length: APPS }, (_, i) => deploy(i)));
    });
    await Promise.all(nodes.map((n) => n.stop()));
    const results: BenchResult[] = [];
    for (const [how, ms] of [
      [ONE_BY_ONE, one],
      [AT_ONCE, many],
    ] as const) {
      results.push({ name: throughputName(how), value: Math.round((EXPECTED / ms) * 1000), unit: 'placements/s', target: TARGET });
      results.push({ name: `end to end, ${how}: first DeployApp to the last node's last assignment`, value: Math.round(ms), unit: 'ms' });
    }
    return results;
  } finally {
    await harness.stop();
    await database.drop();
  }
}

/**
 * Deploys APPS apps of REPLICAS instances through `deployAll` and returns the
 * milliseconds from the first DeployApp until every assignment has arrived.
 */
async function deployAndDeliver(
  harness: SchedulerHarness,
  nodes: readonly FakeNode[],
  round: string,
  deployAll: (deploy: (i: number) => Promise<unknown>) => Promise<void>,
): Promise<number> {
  let received = 0;
  let lastAt = 0;
  const delivered = new Promise<void>((done) => {
    for (const node of nodes) {
      node.behaviour = (assign) => {
        if (!assign.spec?.app.startsWith(`${round}-`)) return;
        received++;
        if (received === EXPECTED) {
          lastAt = performance.now();
          done();
        }
      };
    }
  });
  const spec = create(AppSpecSchema, { image: 'bench:1', resources: { cpuMillis: 100, memoryMib: 128 }, replicas: REPLICAS });
  const start = performance.now();
  await deployAll((i) => harness.apps.deployApp({ name: `${round}-${i}`, spec }));
  await delivered;
  // Delivered only after commit: every assignment is in the database as ASSIGNED, one per node per app.
  const { instances } = await harness.apps.listInstances({});
  const assigned = instances.filter((i) => i.app.startsWith(`${round}-`) && i.state === InstanceState.ASSIGNED && i.nodeId !== '');
  if (assigned.length !== EXPECTED) throw new Error(`${round}: ${assigned.length} of ${EXPECTED} instances are stored as ASSIGNED`);
  if (new Set(assigned.map((i) => `${i.app}/${i.nodeId}`)).size !== EXPECTED) throw new Error(`${round}: replicas of an app share a node`);
  return lastAt - start;
}

/** Node certificates straight from the dev CA (joining is not what is measured); sessions open in parallel. */
async function connectNodes(harness: SchedulerHarness): Promise<FakeNode[]> {
  const pki = harness.platform.pki;
  const ca = await CertificateAuthority.load(await readFile(pki.caCert, 'utf8'), await readFile(pki.caKey, 'utf8'));
  const nodes: FakeNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const nodeId = `bench-${String(i).padStart(3, '0')}`;
    const issued = await ca.issue({ principal: { kind: 'node', id: nodeId }, validityMs: 3_600_000 });
    const node = new FakeNode({
      nodeId,
      tls: { caPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem },
      schedulerUrls: [harness.url],
      capacity: { cpuMillis: 32_000, memoryMib: 65_536, maxInstances: 100 },
      heartbeatIntervalMs: 5_000,
      behaviour: 'ignore',
    });
    harness.nodes.push(node);
    nodes.push(node);
    node.start();
  }
  // Every node is READY once ListNodes says so.
  const until = Date.now() + 60_000;
  for (;;) {
    const { nodes: listed } = await harness.nodeService.listNodes({});
    if (listed.filter((n) => n.state === NodeState.READY).length >= NODES) break;
    if (Date.now() > until) throw new Error(`only ${listed.length} of ${NODES} nodes connected`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return nodes;
}

await runIfMain(import.meta.url, run);
