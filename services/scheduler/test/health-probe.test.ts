// A RUNNING instance's health probe results through the real scheduler and a real node session:
// each new result becomes the instance's reason with an InstanceHealthProbe event; a repeat, or
// a RUNNING event resent without a reason, changes nothing; HEALTHY then ends the detail.
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import { SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
});
afterAll(async () => {
  await harness?.stop();
});

describe('health probe results', () => {
  it('shows the latest result as the reason of a RUNNING instance, one event per new result', async () => {
    const node = await harness.addNode({ capacity: { cpuMillis: 2000, memoryMib: 2048, maxInstances: 4 }, behaviour: 'running' });
    await harness.deploy('probing', spec());
    const running = await harness.events.waitFor(
      (e) => e.app === 'probing' && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.RUNNING,
      10_000,
      'RUNNING',
    );
    const id = running.instanceId;
    const probes = (): Event[] => harness.events.events.filter((e) => e.instanceId === id && e.detail.case === 'healthProbe');
    const reason = async () => (await harness.apps.listInstances({ app: 'probing' })).instances.find((i) => i.id === id)?.reason;

    const refused = 'health check failing: tcp probe: 127.0.0.1:8080: ECONNREFUSED';
    node.report(id, InstanceState.RUNNING, { reason: refused });
    node.report(id, InstanceState.RUNNING, { reason: refused });
    node.report(id, InstanceState.RUNNING, { reason: '' });
    const timeout = 'health check failing: tcp probe: no connection to 127.0.0.1:8080 within 1000 ms';
    node.report(id, InstanceState.RUNNING, { reason: timeout });
    await harness.events.until(() => (probes().length >= 2 ? true : undefined), 10_000, 'two probe results');
    expect(probes().map((e) => (e.detail.case === 'healthProbe' ? e.detail.value.result : ''))).toEqual([refused, timeout]);
    expect(probes()[0]?.message).toBe(`instance ${id} RUNNING, not healthy: ${refused}`);
    expect(await reason()).toBe(timeout);
    const { instances } = await harness.apps.getApp({ name: 'probing' });
    expect(instances.find((i) => i.id === id)).toMatchObject({ state: InstanceState.RUNNING, reason: timeout });

    node.report(id, InstanceState.HEALTHY, { reason: 'tcp probe: 127.0.0.1:8080 accepts connections' });
    await harness.events.waitFor(
      (e) => e.instanceId === id && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.HEALTHY,
      10_000,
      'HEALTHY',
    );
    expect(await reason()).toBe('tcp probe: 127.0.0.1:8080 accepts connections');
    expect(probes()).toHaveLength(2);
  });
});
