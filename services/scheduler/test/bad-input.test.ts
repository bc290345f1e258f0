// Bad input: invalid specs are INVALID_ARGUMENT naming the field, an unknown
// image NOT_FOUND, a registry that is down UNAVAILABLE; a node sending
// nonsense on its session changes nothing and is logged; versions and events
// survive a crash of the scheduler.
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { AppSpecSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { SchedulerHarness, type SpecInit, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
});
afterAll(async () => {
  await harness?.stop();
});

async function deployError(name: string, init: SpecInit): Promise<ConnectError> {
  harness.registry.add('shop:1.0');
  const error = await harness.apps.deployApp({ name, spec: create(AppSpecSchema, init) }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  if (error === undefined) throw new Error(`deploying ${name} was accepted`);
  return error;
}

describe('invalid specs', () => {
  it.each([
    ['zero memory', 'shop', spec({ resources: { cpuMillis: 100, memoryMib: 0 } }), /^spec\.resources\.memory_mib: must be > 0$/],
    [
      'a negative CPU (-1 wrapped to uint32 by the client)',
      'shop',
      spec({ resources: { cpuMillis: 0xffff_ffff, memoryMib: 64 } }),
      /^spec\.resources\.cpu_millis: must be at most 2147483647/,
    ],
    ['no resources', 'shop', { image: 'shop:1.0', replicas: 1 }, /^spec\.resources: required/],
    [
      'zero replicas with a rollout',
      'shop',
      spec({ replicas: 0, updateStrategy: { maxSurge: 2 } }),
      /^spec\.replicas: must be > 0 when spec\.update_strategy is given/,
    ],
    ['a malformed env name', 'shop', spec({ env: { '1BAD': 'x', GOOD: 'y' } }), /^spec\.env\["1BAD"\]: not an environment variable name/],
    [
      'an impossible label',
      'shop',
      spec({ placement: { requiredLabels: { 'bad key!': 'x' } } }),
      /^spec\.placement\.required_labels\["bad key!"\]: a label key is/,
    ],
    [
      'a bad health path',
      'shop',
      spec({ healthCheck: { probe: { case: 'http', value: { port: 8080, path: 'health' } } } }),
      /^spec\.health_check\.http\.path: must start with "\/"$/,
    ],
    ['a malformed image reference', 'shop', spec({ image: 'Not An Image' }), /^spec\.image: "Not An Image" is not an image reference/],
    ['a bad app name', 'Shop_1', spec(), /^name: "Shop_1" is not an app name/],
  ])('refuses %s with INVALID_ARGUMENT naming the field', async (_what, name, init, message) => {
    const error = await deployError(name, init);
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(message);
  });

  it('lists every problem at once', async () => {
    const error = await deployError('shop', spec({ resources: { cpuMillis: 0, memoryMib: 0 }, secretNames: ['DB', 'DB'] }));
    expect(error.rawMessage.split('; ')).toEqual([
      'spec.resources.cpu_millis: must be > 0',
      'spec.resources.memory_mib: must be > 0',
      'spec.secret_names[1]: DB is listed twice',
    ]);
  });

  it('answers NOT_FOUND naming the image for an image the registry does not have', async () => {
    const error = await harness.apps.deployApp({ name: 'ghost', spec: create(AppSpecSchema, spec({ image: 'ghost:9' })) }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toMatch(/^spec\.image: ghost:9 is not in the registry/);
    expect(harness.registry.asked).toContain('ghost:9');
    expect((await harness.apps.listApps({})).apps.map((a) => a.name)).not.toContain('ghost');
  });
});

describe('a node sending nonsense', () => {
  let a: FakeNode;
  let b: FakeNode;

  it('is ignored and logged, and the state stays as it was', async () => {
    a = await harness.addNode({ capacity: { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 }, tokenLabels: { name: 'a' } });
    b = await harness.addNode({ capacity: { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 }, tokenLabels: { name: 'b' } });
    await harness.deploy('steady', spec({ placement: { requiredLabels: { name: 'a' } } }));
    const healthy = await harness.events.waitFor(
      (e) => e.app === 'steady' && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.HEALTHY,
      10_000,
      'steady HEALTHY',
    );
    const id = healthy.instanceId;
    const from = harness.events.events.length;

    b.report(id, InstanceState.FAILED, { reason: 'not mine to fail' });
    a.report(id, InstanceState.PULLING);
    a.report(id, InstanceState.LOST);
    a.report(id, InstanceState.UNSPECIFIED);
    a.report('steady-1-00000000', InstanceState.RUNNING);
    a.send({ msg: { case: 'hello', value: { capacity: { cpuMillis: 1, memoryMib: 1, maxInstances: 1 } } } });
    a.send({ msg: { case: undefined } });
    // A valid event after the nonsense: once it shows, everything before it was handled.
    a.report(id, InstanceState.RUNNING, { reason: 'health check failing' });
    const applied = await harness.events.waitFor((e) => e.instanceId === id && e.detail.case === 'instanceState', 10_000, 'the valid event', from);
    expect(applied.detail.value).toMatchObject({ from: InstanceState.HEALTHY, to: InstanceState.RUNNING, reason: 'health check failing' });
    expect(harness.events.events.slice(from).filter((e) => e.instanceId === id)).toHaveLength(1);

    const { instances } = await harness.apps.listInstances({ app: 'steady' });
    expect(instances.map((i) => [i.id, i.nodeId, i.state])).toEqual([[id, a.nodeId, InstanceState.RUNNING]]);
    const { nodes } = await harness.nodeService.listNodes({});
    expect(nodes.find((n) => n.id === a.nodeId)?.capacity).toMatchObject({ cpuMillis: 4000, memoryMib: 4096 });

    const warnings = harness.lines().filter((l) => l.includes('"level":"warn"'));
    expect(warnings.some((l) => l.includes('placed on another node') && l.includes(b.nodeId))).toBe(true);
    expect(warnings.some((l) => l.includes('PULLING cannot follow HEALTHY'))).toBe(true);
    expect(warnings.some((l) => l.includes('a node may not report LOST'))).toBe(true);
    expect(warnings.some((l) => l.includes('unknown or already finished') && l.includes('steady-1-00000000'))).toBe(true);
    expect(warnings.some((l) => l.includes('second Hello'))).toBe(true);
    expect(a.connectedUrl).toBe(harness.url);
  });
});

describe('durability', () => {
  it('keeps every version and event across a crash of the scheduler, and versions of a deleted app', async () => {
    harness.registry.add('shop:2.0');
    await harness.deploy('kept', spec());
    await harness.deploy('kept', spec({ image: 'shop:2.0' }));
    const { instancesStopped } = await harness.apps.deleteApp({ name: 'kept' });
    expect(instancesStopped).toBeGreaterThanOrEqual(1);
    const before: bigint[] = [];
    for await (const { event } of harness.apps.watchEvents({})) if (event !== undefined) before.push(event.cursor);

    await harness.platform.stopService('scheduler', 'SIGKILL');
    await harness.platform.restartService('scheduler');

    const after: bigint[] = [];
    for await (const { event } of harness.apps.watchEvents({})) if (event !== undefined) after.push(event.cursor);
    expect(after.slice(0, before.length)).toEqual(before);
    const gone = await harness.apps.getApp({ name: 'kept' }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(gone?.code).toBe(Code.NotFound);
    // Deploying the name again continues the numbering: the deleted app's versions are still stored.
    const again = await harness.deploy('kept', spec());
    expect(again.current?.version).toBe(3);
    const { versions } = await harness.apps.getApp({ name: 'kept' });
    expect(versions.map((v) => [v.version, v.spec?.image])).toEqual([
      [3, 'shop:1.0'],
      [2, 'shop:2.0'],
      [1, 'shop:1.0'],
    ]);
  });

  it('answers UNAVAILABLE when the registry is down', async () => {
    await harness.registry.close();
    const error = await harness.apps.deployApp({ name: 'later', spec: create(AppSpecSchema, spec()) }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Unavailable);
    expect(error?.rawMessage).toMatch(/the registry at https:\/\/127\.0\.0\.1:\d+ cannot resolve images right now/);
  });
});
