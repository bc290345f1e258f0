// Rolling updates with health gates: a good version replaces the old one
// without dipping below replicas - max_unavailable HEALTHY instances; a
// version that never becomes healthy is stopped and rolled back while the old
// one keeps serving; RollbackApp returns to an earlier healthy version.

import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import type { AssignBehaviour } from '@shellwego/testing/scheduler/fake-node';
import { SchedulerHarness, type SpecInit, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationFromMs } from '../src/model/durations.js';

const REPLICAS = 3;
const MAX_UNAVAILABLE = 0;

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
  for (let i = 0; i < 3; i++) await harness.addNode({ capacity: { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 } });
});
afterAll(async () => {
  await harness?.stop();
});

function version(image: string): SpecInit {
  return spec({
    image,
    replicas: REPLICAS,
    updateStrategy: { maxSurge: 1, maxUnavailable: MAX_UNAVAILABLE, minHealthyTime: durationFromMs(300), healthDeadline: durationFromMs(2_000) },
  });
}

/** Every node runs instances of `versions` only up to RUNNING (never healthy); others become healthy. */
function neverHealthy(...versions: number[]): void {
  const behaviour: AssignBehaviour = (assign, node) => {
    const id = assign.spec?.instanceId ?? '';
    for (const state of [InstanceState.PULLING, InstanceState.BOOTING, InstanceState.STARTING, InstanceState.RUNNING]) node.report(id, state);
    if (!versions.includes(assign.spec?.version ?? 0)) node.report(id, InstanceState.HEALTHY);
  };
  for (const node of harness.nodes) node.behaviour = behaviour;
}

function rolloutStep(target: number, step: string, from = 0): Promise<Event> {
  return harness.events.waitFor(
    (e) => e.app === 'shop' && e.detail.case === 'rollout' && e.detail.value.targetVersion === target && e.detail.value.step === step,
    15_000,
    `rollout of v${target}: ${step}`,
    from,
  );
}

type States = Map<string, { version: number; state: InstanceState }>;

/**
 * Replays the app's instance events from `from` on, starting from the states
 * they had before, and returns the end states and the fewest HEALTHY
 * instances the app had at any point in between.
 */
function replay(from: number): { states: States; fewestHealthy: number } {
  const states: States = new Map();
  let fewestHealthy = Number.POSITIVE_INFINITY;
  harness.events.events.forEach((event, index) => {
    if (event.app !== 'shop' || event.detail.case !== 'instanceState') return;
    states.set(event.instanceId, { version: Number(event.instanceId.split('-')[1]), state: event.detail.value.to });
    if (index >= from) fewestHealthy = Math.min(fewestHealthy, [...states.values()].filter((s) => s.state === InstanceState.HEALTHY).length);
  });
  return { states, fewestHealthy };
}

describe('rolling updates', () => {
  it('replaces a version instance by instance, stopping old ones only after new ones are healthy', async () => {
    await harness.deploy('shop', version('shop:1.0'));
    await rolloutStep(1, 'succeeded');
    const start = harness.events.events.length;
    await harness.deploy('shop', version('shop:2.0'));
    await rolloutStep(2, 'succeeded', start);

    const { states, fewestHealthy } = replay(start);
    expect(fewestHealthy).toBeGreaterThanOrEqual(REPLICAS - MAX_UNAVAILABLE);
    const byVersion = (v: number, state: InstanceState) => [...states.values()].filter((s) => s.version === v && s.state === state).length;
    expect(byVersion(1, InstanceState.STOPPED)).toBe(REPLICAS);
    expect(byVersion(2, InstanceState.HEALTHY)).toBe(REPLICAS);

    // The first old instance was told to stop only after a new one had been HEALTHY for min_healthy_time.
    const events = harness.events.events.slice(start);
    const firstHealthyNew = events.find(
      (e) => e.detail.case === 'instanceState' && e.instanceId.startsWith('shop-2-') && e.detail.value.to === InstanceState.HEALTHY,
    );
    const firstStopOld = events.find(
      (e) => e.detail.case === 'instanceState' && e.instanceId.startsWith('shop-1-') && e.detail.value.to === InstanceState.STOPPING,
    );
    expect(firstHealthyNew).toBeDefined();
    expect(firstStopOld).toBeDefined();
    expect(firstStopOld!.cursor).toBeGreaterThan(firstHealthyNew!.cursor);
    const gapMs =
      Number(firstStopOld!.time!.seconds - firstHealthyNew!.time!.seconds) * 1000 + (firstStopOld!.time!.nanos - firstHealthyNew!.time!.nanos) / 1e6;
    expect(gapMs).toBeGreaterThanOrEqual(250);

    const { app } = await harness.apps.getApp({ name: 'shop' });
    expect(app?.current?.version).toBe(2);
    expect(app?.deployment).toMatchObject({ targetVersion: 2, fromVersion: 1, state: DeploymentState.SUCCEEDED, healthy: REPLICAS, desired: REPLICAS });
    expect(app?.instanceCounts).toEqual({ HEALTHY: REPLICAS });
  });

  it('stops a rollout whose instances never become healthy and rolls back, the old version serving throughout', async () => {
    neverHealthy(3);
    const start = harness.events.events.length;
    await harness.deploy('shop', version('shop:3.0'));
    const failed = await rolloutStep(3, 'failed', start);
    expect(failed.message).toMatch(/did not become HEALTHY within 2 s/);
    await rolloutStep(3, 'rolled-back', start);
    await harness.events.until(
      () => {
        const { states } = replay(start);
        return [...states.values()].every((s) => s.version !== 3 || s.state === InstanceState.STOPPED) ? true : undefined;
      },
      10_000,
      'every v3 instance stopped',
    );

    const { states, fewestHealthy } = replay(start);
    expect(fewestHealthy).toBeGreaterThanOrEqual(REPLICAS - MAX_UNAVAILABLE);
    const v2 = [...states.values()].filter((s) => s.version === 2);
    expect(v2.map((s) => s.state)).toEqual([InstanceState.HEALTHY, InstanceState.HEALTHY, InstanceState.HEALTHY]);
    // Never more than max_surge new instances at once, since none ever counted as healthy.
    expect([...states.keys()].filter((id) => id.startsWith('shop-3-'))).toHaveLength(1);

    const { app, versions } = await harness.apps.getApp({ name: 'shop' });
    expect(app?.current?.version).toBe(2);
    expect(app?.deployment).toMatchObject({ targetVersion: 3, fromVersion: 2, state: DeploymentState.ROLLED_BACK });
    expect(app?.deployment?.reason).toMatch(/did not become HEALTHY/);
    expect(versions.map((v) => v.version)).toEqual([3, 2, 1]);
  });

  it('fails a rollout at once when a new instance fails, and RollbackApp returns to the previous healthy version', async () => {
    for (const node of harness.nodes) {
      node.behaviour = (assign, n) => {
        const id = assign.spec?.instanceId ?? '';
        if (assign.spec?.version === 4) n.report(id, InstanceState.FAILED, { reason: 'crashed on start', exitCode: 2 });
        else for (const state of [InstanceState.RUNNING, InstanceState.HEALTHY]) n.report(id, state);
      };
    }
    const start = harness.events.events.length;
    await harness.deploy('shop', version('shop:4.0'));
    expect((await rolloutStep(4, 'failed', start)).message).toMatch(/failed: crashed on start/);
    await rolloutStep(4, 'rolled-back', start);

    const rollback = harness.events.events.length;
    const { app } = await harness.apps.rollbackApp({ name: 'shop' });
    expect(app?.current?.version).toBe(1);
    expect(app?.deployment).toMatchObject({ targetVersion: 1, fromVersion: 2, state: DeploymentState.IN_PROGRESS });
    await rolloutStep(1, 'succeeded', rollback);
    const { states, fewestHealthy } = replay(rollback);
    expect(fewestHealthy).toBeGreaterThanOrEqual(REPLICAS - MAX_UNAVAILABLE);
    expect([...states.values()].filter((s) => s.state === InstanceState.HEALTHY).map((s) => s.version)).toEqual([1, 1, 1]);
  });
});
