// Node failure and drain: a node whose session dies and whose heartbeats
// stop is marked DOWN after heartbeat interval + grace, its instances are LOST
// and replaced on other nodes at once; when it returns, the stale instances it
// still runs are stopped. A short reconnect inside the deadline changes
// nothing. Drain moves instances off behind the same health gate as a rollout.

import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import type { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { HEARTBEAT_GRACE_MS, HEARTBEAT_INTERVAL_MS, SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationFromMs } from '../src/model/durations.js';

const DEADLINE_MS = HEARTBEAT_INTERVAL_MS + HEARTBEAT_GRACE_MS;
const capacity = { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 };

let harness: SchedulerHarness;
let nodes: FakeNode[];
beforeAll(async () => {
  harness = await SchedulerHarness.start();
  nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await harness.addNode({ capacity }));
});
afterAll(async () => {
  await harness?.stop();
});

function owner(instanceId: string): FakeNode {
  const node = nodes.find((n) => n.instances.has(instanceId));
  if (node === undefined) throw new Error(`no node runs ${instanceId}`);
  return node;
}

describe('node failure', () => {
  it('moves the instances of a node whose session died to another node within the deadline, and stops them on its return', async () => {
    await harness.deploy('web', spec({ replicas: 2, updateStrategy: { minHealthyTime: durationFromMs(200) } }));
    const running = await harness.events.until(
      () => {
        const healthy = harness.events.events.filter(
          (e) => e.app === 'web' && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.HEALTHY,
        );
        return healthy.length === 2 ? healthy.map((e) => e.instanceId) : undefined;
      },
      10_000,
      'two healthy web instances',
    );
    const victim = owner(running[0] as string);
    const spare = nodes.find((n) => running.every((id) => !n.instances.has(id))) as FakeNode;
    const lostId = running[0] as string;
    const from = harness.events.events.length;
    const killedAt = Date.now();
    victim.kill();

    const replacement = await spare.waitForAssign((a) => a.spec?.app === 'web', DEADLINE_MS + 3_000, 'the replacement');
    const movedAfterMs = Date.now() - killedAt;
    // Not before the grace (the last heartbeat was at most one interval before the kill), not much after the deadline.
    expect(movedAfterMs).toBeGreaterThanOrEqual(DEADLINE_MS - HEARTBEAT_INTERVAL_MS - 100);
    expect(movedAfterMs).toBeLessThan(DEADLINE_MS + 1_000);
    expect(replacement.spec?.instanceId).not.toBe(lostId);

    const down = await harness.events.waitFor(
      (e) => e.nodeId === victim.nodeId && e.detail.case === 'nodeState' && e.detail.value.to === NodeState.DOWN,
      1_000,
      'node DOWN',
      from,
    );
    expect(down.message).toMatch(/no heartbeat for/);
    const lost = await harness.events.waitFor((e) => e.instanceId === lostId && e.detail.case === 'instanceState', 1_000, 'instance LOST', from);
    expect(lost.detail.value).toMatchObject({ to: InstanceState.LOST });
    expect(lost.cursor).toBeGreaterThan(down.cursor);

    // The node returns still running its old VM: the scheduler stops it, and takes the node back.
    expect(victim.instances.has(lostId)).toBe(true);
    const back = harness.events.events.length;
    victim.start();
    const stop = await victim.waitFor(() => victim.stops.find((s) => s.instanceId === lostId), 5_000, 'a Stop for the stale instance');
    expect(stop.reason).toMatch(/not a live instance/);
    await harness.events.waitFor(
      (e) => e.nodeId === victim.nodeId && e.detail.case === 'nodeState' && e.detail.value.to === NodeState.READY,
      5_000,
      'node READY again',
      back,
    );
    await victim.waitFor(() => (victim.instances.has(lostId) ? undefined : true), 5_000, 'the stale instance gone');

    const { instances } = await harness.apps.listInstances({ app: 'web' });
    expect(instances).toHaveLength(2);
    expect(instances.every((i) => i.state === InstanceState.HEALTHY)).toBe(true);
    expect(instances.map((i) => i.id)).not.toContain(lostId);
  });

  it('keeps a node that reconnects within the deadline, with its instances', async () => {
    const node = nodes[1] as FakeNode;
    const from = harness.events.events.length;
    const opened = node.sessions;
    node.kill();
    node.start();
    await node.waitFor(() => (node.sessions > opened && node.connectedUrl !== undefined ? true : undefined), 5_000, 'a new session');
    // Past the deadline since the kill: a node marked DOWN would show by now.
    await new Promise((resolve) => setTimeout(resolve, DEADLINE_MS + 500));
    const changes = harness.events.events
      .slice(from)
      .filter(
        (e) => e.nodeId === node.nodeId && (e.detail.case === 'nodeState' || (e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.LOST)),
      );
    expect(changes).toEqual([]);
  });
});

describe('drain', () => {
  it('moves instances off a draining node, stopping each only after its replacement is healthy', async () => {
    const { instances } = await harness.apps.listInstances({ app: 'web' });
    const target = nodes.find((n) => n.nodeId === instances[0]?.nodeId) as FakeNode;
    const moving = [...target.instances.keys()];
    const from = harness.events.events.length;
    const { instancesMoving } = await harness.nodeService.drainNode({ nodeId: target.nodeId });
    expect(instancesMoving).toBe(moving.length);

    for (const id of moving) {
      const stopped = await harness.events.waitFor(
        (e) => e.instanceId === id && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPING,
        10_000,
        `${id} stopping`,
        from,
      );
      const replacementHealthy = harness.events.events
        .slice(from)
        .find((e) => e.app === 'web' && !moving.includes(e.instanceId) && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.HEALTHY);
      expect(replacementHealthy).toBeDefined();
      expect(replacementHealthy!.cursor).toBeLessThan(stopped.cursor);
    }
    for (const id of moving) {
      await harness.events.waitFor(
        (e) => e.instanceId === id && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPED,
        10_000,
        `${id} stopped`,
        from,
      );
    }
    expect(target.instances.size).toBe(0);
    const { nodes: listed } = await harness.nodeService.listNodes({});
    expect(listed.find((n) => n.id === target.nodeId)).toMatchObject({ state: NodeState.DRAINING, instanceCount: 0 });
    const after = await harness.apps.listInstances({ app: 'web' });
    expect(after.instances.filter((i) => i.state === InstanceState.HEALTHY)).toHaveLength(2);
    expect(after.instances.every((i) => i.nodeId !== target.nodeId)).toBe(true);
  });
});
