// Instance addresses through the real scheduler and real node sessions: the
// address a node reports on its instance events and in Hello is recorded and
// shown by ListInstances, GetApp and events; an ended instance has none; an
// address that is not IPv4 is refused (Hello) or ignored (event).
import { setTimeout } from 'node:timers/promises';
import { Code } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Instance } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
});
afterAll(async () => {
  await harness?.stop();
});

const capacity = { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 };

/** The first instance ListInstances shows matching `predicate`, asked again every 100 ms. */
async function listed(
  query: { app: string; includeTerminal?: boolean },
  predicate: (i: Instance) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<Instance> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await harness.apps.listInstances(query)).instances.find(predicate);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await setTimeout(100);
  }
}

function instanceOf(app: string, state: InstanceState): Promise<Instance> {
  return listed({ app }, (i) => i.state === state, `${app} ${InstanceState[state]}`);
}

describe('instance addresses', () => {
  let node: FakeNode;
  let host = 10;

  it('shows the address the node reported in ListInstances, GetApp and the instance events', async () => {
    node = await harness.addNode({ capacity, tokenLabels: { net: 'on' }, addressFor: () => `10.88.4.${host++}` });
    await harness.deploy('addr', spec({ placement: { requiredLabels: { net: 'on' } } }));
    const healthy = await instanceOf('addr', InstanceState.HEALTHY);
    expect(healthy.address).toBe('10.88.4.10');
    expect(healthy.nodeId).toBe(node.nodeId);

    const { instances } = await harness.apps.getApp({ name: 'addr' });
    expect(instances.map((i) => ({ id: i.id, address: i.address }))).toEqual([{ id: healthy.id, address: '10.88.4.10' }]);

    const booting = await harness.events.waitFor(
      (e) => e.instanceId === healthy.id && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.BOOTING,
      5_000,
      'BOOTING event',
    );
    expect(booting.detail.case === 'instanceState' && booting.detail.value.address).toBe('10.88.4.10');
    expect(booting.message).toBe(`instance ${healthy.id} (10.88.4.10) PULLING -> BOOTING`);
  });

  it('takes the address from Hello when the node comes back with the instance (re-adoption)', async () => {
    const before = await instanceOf('addr', InstanceState.HEALTHY);
    await node.stop();
    // The agent restarted and took the instance over; its Hello reports where it runs now.
    node.addresses.set(before.id, '10.88.4.77');
    node.start();
    await listed({ app: 'addr' }, (i) => i.id === before.id && i.address === '10.88.4.77', 'the address from Hello');
  });

  it('ignores an event address that is not IPv4 but keeps the state change', async () => {
    await harness.deploy('addr-bad', spec({ placement: { requiredLabels: { net: 'on' } }, replicas: 1 }));
    const healthy = await instanceOf('addr-bad', InstanceState.HEALTHY);
    node.report(healthy.id, InstanceState.RUNNING, { reason: 'probe failing', address: '10.88.4.300' });
    const running = await instanceOf('addr-bad', InstanceState.RUNNING);
    expect(running.address).toBe(healthy.address);
    expect(harness.lines().some((l) => l.includes('ignored an instance address that is not a dotted-quad IPv4 address'))).toBe(true);
  });

  it('clears the address when the instance ends', async () => {
    const live = await instanceOf('addr', InstanceState.HEALTHY);
    await harness.apps.scaleApp({ name: 'addr', replicas: 0 });
    const stopped = await listed({ app: 'addr', includeTerminal: true }, (i) => i.id === live.id && i.state === InstanceState.STOPPED, 'STOPPED');
    expect(stopped.address).toBe('');
  });

  it('refuses a Hello listing an instance whose address is not IPv4, naming it', async () => {
    const liar = await harness.addNode({ capacity, tokenLabels: { net: 'liar' } });
    await liar.stop();
    liar.instances.set('made-up', InstanceState.RUNNING);
    liar.addresses.set('made-up', 'eth0; reboot');
    const sessions = liar.sessions;
    liar.start();
    const error = await liar.waitFor(
      () => (liar.sessions > sessions && liar.connectedUrl === undefined ? liar.lastError : undefined),
      10_000,
      'the session refused',
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain('hello.running: instance made-up has address "eth0; reboot", not a dotted-quad IPv4 address');
  });
});
