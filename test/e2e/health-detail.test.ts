// Health you can see (issue 12), with real processes: scheduler, secrets, registry and a node
// agent on the process driver. An app whose exec probe cannot start sits RUNNING, and while it
// does (long before its health deadline) the probe's result is its reason in ListInstances,
// GetApp, `shellwego instance ls`, `app get` and the events, reported once, not at every probe.
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { AppSpec } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryImageArchive } from './support/canary-image.js';
import { instanceReached } from './support/instance-watch.js';
import { NodePlatform } from './support/node-platform.js';

const skip = busyboxMissing();

let p: NodePlatform;
beforeAll(async () => {
  if (skip !== undefined) return;
  p = await NodePlatform.start();
  await p.addAgent({ key: 'main', driver: 'process' });
  await p.importImage('canary:1', await canaryImageArchive('canary:1'));
}, 180_000);
afterAll(async () => {
  await p?.stop();
});

const RESULT = 'health check failing: exec probe could not start: /bin/does-not-exist: not found';

describe.skipIf(skip !== undefined)('health probe detail', () => {
  it('shows why a RUNNING instance is not healthy, before the deadline, once per result', { timeout: 120_000 }, async () => {
    const from = p.events.events.length;
    await p.apps.deployApp({
      name: 'probe-fails',
      spec: {
        image: 'canary:1',
        replicas: 1,
        resources: { cpuMillis: 100, memoryMib: 32 },
        healthCheck: {
          probe: { case: 'exec', value: { argv: ['/bin/does-not-exist'] } },
          interval: { seconds: 0n, nanos: 200_000_000 },
        } as AppSpec['healthCheck'],
        // Ten minutes: whatever is seen below is seen long before the deadline fails the instance.
        updateStrategy: { healthDeadline: { seconds: 600n, nanos: 0 } },
      },
    });
    const running = await instanceReached(p.events, 'probe-fails', InstanceState.RUNNING, 60_000, from);
    const probe = await p.events.waitFor(
      (e) => e.instanceId === running.instanceId && e.detail.case === 'healthProbe',
      30_000,
      'the health probe result event',
      from,
    );
    const result = probe.detail.case === 'healthProbe' ? probe.detail.value.result : '';
    expect(result).toBe(RESULT);
    expect(probe.message).toBe(`instance ${running.instanceId} RUNNING, not healthy: ${result}`);

    const { instances } = await p.apps.listInstances({ app: 'probe-fails' });
    expect(instances).toEqual([expect.objectContaining({ id: running.instanceId, state: InstanceState.RUNNING, reason: result })]);
    const got = await p.apps.getApp({ name: 'probe-fails' });
    expect(got.instances.map((i) => i.reason)).toEqual([result]);

    const table = await p.cli(['instance', 'ls', '--app', 'probe-fails']);
    expect(table.stdout).toMatch(new RegExp(`^${running.instanceId}\\s.*\\sRUNNING\\s+\\S+\\s+health check failing: exec probe could not start: `, 'm'));
    const appGet = await p.cli(['app', 'get', 'probe-fails']);
    expect(appGet.stdout).toContain(`RUNNING  ${result}`);
    const events = await p.cli(['events', '--app', 'probe-fails']);
    expect(events.stdout).toContain(`RUNNING, not healthy: ${result}`);

    // The probe keeps failing every 200 ms with the same result: no new event for it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const probes = p.events.events.filter((e) => e.instanceId === running.instanceId && e.detail.case === 'healthProbe');
    expect(probes).toHaveLength(1);
    const still = (await p.apps.listInstances({ app: 'probe-fails' })).instances[0];
    expect(still?.state).toBe(InstanceState.RUNNING);
  });
});
