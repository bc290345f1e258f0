// Node failure: a real scheduler on Postgres with 50 live node sessions; one
// node dies (its session is cut, its heartbeats stop). Measured: the time from
// its last heartbeat until every one of its instances has been assigned to
// another node, next to the configured deadline (heartbeat interval + grace).
// Run directly (`npx tsx test/bench/scheduler-failover.bench.ts`) or through
// `npm run bench scheduler-failover`.
import { readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { AppSpecSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { CertificateAuthority } from '@shellwego/kit/pki';
import type { BenchResult, BenchTarget } from '@shellwego/testing/bench/bench-result';
import { runIfMain } from '@shellwego/testing/bench/run-bench';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { SchedulerHarness } from '@shellwego/testing/scheduler/scheduler-harness';

const NODES = 50;
const APPS = 10;
const HEARTBEAT_MS = 1_000;
const GRACE_MS = 2_000;
const DEADLINE_MS = HEARTBEAT_MS + GRACE_MS;
const FAILURES = 3;
/** The project's target: instances re-assigned within the deadline plus less than a second. */
const TARGET: BenchTarget = { on: 'value', bound: 'below', value: DEADLINE_MS + 1_000, unit: 'ms' };
const SETTING = `heartbeat ${HEARTBEAT_MS / 1000} s + grace ${GRACE_MS / 1000} s = deadline ${DEADLINE_MS / 1000} s`;
const MEDIAN_NAME = `node failure, last heartbeat to all its instances re-assigned (median of ${FAILURES}; ${SETTING})`;

export async function run(): Promise<BenchResult[]> {
  const skip = await postgresUnavailable();
  if (skip !== undefined) return [{ name: MEDIAN_NAME, target: TARGET, notRun: skip }];
  const database = await createPostgresTestDatabase();
  const harness = await SchedulerHarness.start({
    database: database.url,
    watchEvents: false,
    env: {
      SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL: `${HEARTBEAT_MS}ms`,
      SHELLWEGO_SCHEDULER_HEARTBEAT_GRACE: `${GRACE_MS}ms`,
      SHELLWEGO_LOG_LEVEL: 'warn',
    },
  });
  try {
    const nodes = await connectNodes(harness);
    harness.registry.add('bench:1');
    const spec = create(AppSpecSchema, { image: 'bench:1', resources: { cpuMillis: 100, memoryMib: 128 }, replicas: NODES - FAILURES });
    for (let i = 0; i < APPS; i++) await harness.apps.deployApp({ name: `svc-${i}`, spec });
    const placed = APPS * (NODES - FAILURES);
    await waitFor(() => nodes.reduce((sum, n) => sum + n.instances.size, 0) === placed, 30_000, 'every instance running');

    const samples: number[] = [];
    for (let round = 0; round < FAILURES; round++) {
      const alive = nodes.filter((n) => n.connectedUrl !== undefined);
      const victim = alive.reduce((most, n) => (n.instances.size > most.instances.size ? n : most));
      const moving = victim.instances.size;
      const before = new Map(alive.map((n) => [n, n.assignments.length]));
      victim.kill();
      const lastHeartbeat = victim.lastHeartbeatAt;
      const others = alive.filter((n) => n !== victim);
      const newAssignments = () => others.reduce((sum, n) => sum + n.assignments.length - (before.get(n) ?? 0), 0);
      await waitFor(() => newAssignments() >= moving, DEADLINE_MS + 10_000, `${moving} replacements`);
      samples.push(Date.now() - lastHeartbeat);
    }
    await Promise.all(nodes.map((n) => n.stop()));
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)] as number;
    const worst = samples.at(-1) as number;
    return [
      { name: MEDIAN_NAME, value: median, unit: 'ms', baseline: { name: 'configured deadline', value: DEADLINE_MS }, target: TARGET },
      { name: `node failure, worst of ${FAILURES}, ${SETTING}`, value: worst, unit: 'ms', baseline: { name: 'configured deadline', value: DEADLINE_MS } },
    ];
  } finally {
    await harness.stop();
    await database.drop();
  }
}

/** Re-checks on a short timer: the bench watches many nodes at once, not one event. */
async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function connectNodes(harness: SchedulerHarness): Promise<FakeNode[]> {
  const pki = harness.platform.pki;
  const ca = await CertificateAuthority.load(await readFile(pki.caCert, 'utf8'), await readFile(pki.caKey, 'utf8'));
  const nodes: FakeNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const nodeId = `host-${String(i).padStart(2, '0')}`;
    const issued = await ca.issue({ principal: { kind: 'node', id: nodeId }, validityMs: 3_600_000 });
    const node = new FakeNode({
      nodeId,
      tls: { caPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem },
      schedulerUrls: [harness.url],
      capacity: { cpuMillis: 16_000, memoryMib: 32_768, maxInstances: 100 },
      heartbeatIntervalMs: HEARTBEAT_MS,
    });
    harness.nodes.push(node);
    nodes.push(node);
    node.start();
  }
  const until = Date.now() + 60_000;
  for (;;) {
    const { nodes: listed } = await harness.nodeService.listNodes({});
    if (listed.filter((n) => n.state === NodeState.READY).length >= NODES) return nodes;
    if (Date.now() > until) throw new Error(`only ${listed.length} of ${NODES} nodes connected`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

await runIfMain(import.meta.url, run);
