// Two scheduler processes on one Postgres: one is active, the other serves
// reads, refuses writes and sessions with UNAVAILABLE, and streams the
// leader's events live; when the leader is killed, the standby takes over
// within seconds, nodes reconnect to it, and nothing placed is lost or moved.

import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { AppService, AppSpecSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { createMtlsTransport, expectedService } from '@shellwego/kit/rpc';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { EventStream } from '@shellwego/testing/scheduler/event-stream';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationFromMs } from '../src/model/durations.js';

const skip = await postgresUnavailable();
const database = skip === undefined ? await createPostgresTestDatabase() : undefined;
if (skip !== undefined) console.warn(`skipping the scheduler leadership tests: ${skip}`);

let harness: SchedulerHarness;
let standbyUrl: string;
let standbyApps: ReturnType<typeof createClient<typeof AppService>>;
beforeAll(async () => {
  if (skip !== undefined) return;
  harness = await SchedulerHarness.start({ database: database?.url ?? '' });
  ({ url: standbyUrl } = await harness.startStandby());
  standbyApps = createClient(AppService, createMtlsTransport({ baseUrl: standbyUrl, server: expectedService('scheduler'), tls: harness.platform.admin }));
}, 120_000);
afterAll(async () => {
  await harness?.stop();
  await database?.drop();
});

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  if (error === undefined) throw new Error('expected the call to be refused');
  return error;
}

describe.skipIf(skip !== undefined)('active and standby schedulers on one Postgres', () => {
  let nodes: FakeNode[];

  it('lets the standby serve reads and live events but refuse writes and sessions', async () => {
    nodes = [];
    for (let i = 0; i < 2; i++) {
      nodes.push(await harness.addNode({ capacity: { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 }, urls: [harness.url, standbyUrl] }));
    }
    const onStandby = new EventStream(standbyApps, { app: 'steady' });
    try {
      await harness.deploy('steady', spec({ replicas: 2, updateStrategy: { minHealthyTime: durationFromMs(200) } }));
      // The leader wrote these; the standby streams them as they commit.
      await onStandby.until(
        () =>
          onStandby.events.filter((e) => e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.HEALTHY).length === 2 ? true : undefined,
        10_000,
        'two HEALTHY events on the standby',
      );
    } finally {
      await onStandby.close();
    }
    const { apps } = await standbyApps.listApps({});
    expect(apps.map((a) => a.name)).toEqual(['steady']);

    const write = await refusal(standbyApps.deployApp({ name: 'nope', spec: create(AppSpecSchema, spec()) }));
    expect(write.code).toBe(Code.Unavailable);
    expect(write.rawMessage).toContain(`the active scheduler is`);
    expect(write.rawMessage).toContain(harness.url);
    expect(nodes.every((n) => n.connectedUrl === harness.url)).toBe(true);

    const identity = await FakeNode.join(standbyUrl, harness.caPem, await harness.token());
    const standbyOnly = new FakeNode({
      nodeId: identity.nodeId,
      tls: identity.tls,
      schedulerUrls: [standbyUrl],
      capacity: { cpuMillis: 1, memoryMib: 1, maxInstances: 1 },
      heartbeatIntervalMs: 500,
      reconnectDelayMs: 200,
    });
    standbyOnly.start();
    try {
      const session = await standbyOnly.waitFor(() => standbyOnly.lastError, 5_000, 'the standby to refuse the session');
      expect(session.code).toBe(Code.Unavailable);
      expect(session.rawMessage).toMatch(/standby.*reconnect to the active scheduler/);
    } finally {
      await standbyOnly.stop();
    }
  });

  it('takes over within seconds when the leader is killed; nodes reconnect and keep their instances', async () => {
    const before = (await standbyApps.listInstances({ app: 'steady' })).instances.map((i) => [i.id, i.nodeId, i.state]);
    expect(before).toHaveLength(2);
    const watch = new EventStream(standbyApps);
    await watch.until(() => (watch.events.length > 0 ? true : undefined), 5_000, 'the backlog');
    const killedAt = Date.now();
    await harness.platform.stopService('scheduler', 'SIGKILL');

    // Writes work again as soon as the standby holds the lock and has loaded the state.
    for (;;) {
      const attempt = await standbyApps.deployApp({ name: 'after', spec: create(AppSpecSchema, spec({ replicas: 2 })) }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      if (attempt === undefined) break;
      expect(attempt.code).toBe(Code.Unavailable);
      if (Date.now() - killedAt > 10_000) throw new Error(`no takeover within 10 s: ${attempt.rawMessage}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(5_000);

    // The nodes find the new active scheduler and the new app's instances reach them over their
    // new sessions. Which node gets which replica depends on who reconnected first, so the check
    // is on all of them together. An Assign may arrive again on a new session (at least once), so
    // instances are counted by id.
    const deadline = Date.now() + 30_000;
    const assignedAfter = () =>
      new Set(
        nodes
          .flatMap((n) => n.assignments)
          .filter((a) => a.spec?.app === 'after')
          .map((a) => `${a.spec?.instanceId}`),
      ).size;
    while (!(nodes.every((n) => n.connectedUrl === standbyUrl) && assignedAfter() === 2)) {
      if (Date.now() > deadline) {
        const where = nodes.map(
          (n) => `${n.nodeId} on ${n.connectedUrl ?? 'nothing'} after ${n.sessions} sessions, last error ${n.lastError?.message ?? 'none'}`,
        );
        throw new Error(
          `after 30 s: ${nodes.filter((n) => n.connectedUrl === standbyUrl).length}/2 nodes on the new leader, ${assignedAfter()}/2 instances assigned (${where.join('; ')})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const after = (await standbyApps.listInstances({ app: 'steady' })).instances.map((i) => [i.id, i.nodeId, i.state]);
    expect(after).toEqual(before);
    await watch.until(
      () => (watch.events.some((e) => e.app === 'after' && e.message.includes('-> HEALTHY')) ? true : undefined),
      30_000,
      'the new app healthy',
    );
    await watch.close();
    expect(watch.events.filter((e) => e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.LOST)).toEqual([]);
    const cursors = watch.events.map((e) => e.cursor);
    const stored: bigint[] = [];
    for await (const { event } of standbyApps.watchEvents({})) if (event !== undefined) stored.push(event.cursor);
    expect(cursors).toEqual(stored.slice(0, cursors.length));
  }, 120_000);
});
