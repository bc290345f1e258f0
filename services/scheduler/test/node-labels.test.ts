// The label and capacity forgery attacks against a real scheduler: a node
// joined with a token labelled pool=dev asks for zone=secure at join and in
// every Hello. Placement matches only what the token or an admin said, so an
// app requiring zone=secure stays PENDING with a reason and the forging node
// never receives its assignment (nor the grant for its secrets). A node
// reporting more capacity than its token's ceiling is counted at the ceiling.
import { Code, ConnectError } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
});
afterAll(async () => {
  await harness?.stop();
});

const capacity = { cpuMillis: 4000, memoryMib: 8192, maxInstances: 10 };

describe('labels placement matches', () => {
  it('ignores what a node says about itself: the app requiring zone=secure stays PENDING and the forger gets no assignment', async () => {
    const forger = await harness.addNode({ capacity, tokenLabels: { pool: 'dev' }, labels: { zone: 'secure' } });

    const [listed] = (await harness.nodeService.listNodes({})).nodes.filter((n) => n.id === forger.nodeId);
    expect(listed?.labels).toEqual({ pool: 'dev' });
    expect(listed?.reportedLabels).toEqual({ zone: 'secure' });

    await harness.deploy('vault', spec({ placement: { requiredLabels: { zone: 'secure' } } }));
    const pending = await harness.events.waitFor(
      (e) => e.app === 'vault' && e.detail.case === 'placement' && e.detail.value.nodeId === '',
      10_000,
      'vault PENDING',
    );
    expect(pending.message).toMatch(/no node has label zone=secure/);
    const { instances } = await harness.apps.listInstances({ app: 'vault' });
    expect(instances.map((i) => [i.state, i.nodeId])).toEqual([[InstanceState.PENDING, '']]);
    expect(instances[0]?.reason).toMatch(/zone=secure/);
    // A heartbeat round later the node has still been sent nothing for the app: no Assign, so no grant.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(forger.received.filter((r) => r.msg.case === 'assign')).toEqual([]);

    // An admin's word is what counts: labelled by an admin, the node takes the app.
    const { node } = await harness.nodeService.setNodeLabels({ nodeId: forger.nodeId, set: { zone: 'secure' } });
    expect(node?.labels).toEqual({ pool: 'dev', zone: 'secure' });
    const assign = await forger.waitForAssign((a) => a.spec?.app === 'vault', 10_000);
    expect(assign.grant?.signature.length).toBeGreaterThan(0);
  });

  it('lets an admin remove labels, and refuses bad labels and unknown nodes', async () => {
    const node = await harness.addNode({ capacity, tokenLabels: { pool: 'dev', disk: 'ssd' } });
    const removed = await harness.nodeService.setNodeLabels({ nodeId: node.nodeId, remove: ['disk'] });
    expect(removed.node?.labels).toEqual({ pool: 'dev' });

    const bad = await harness.nodeService.setNodeLabels({ nodeId: node.nodeId, set: { 'no spaces': 'x' } }).catch((e: unknown) => ConnectError.from(e));
    expect(bad).toMatchObject({ code: Code.InvalidArgument });
    const both = await harness.nodeService.setNodeLabels({ nodeId: node.nodeId, set: { a: 'b' }, remove: ['a'] }).catch((e: unknown) => ConnectError.from(e));
    expect(both).toMatchObject({ code: Code.InvalidArgument });
    const unknown = await harness.nodeService.setNodeLabels({ nodeId: 'nobody-00000000', set: { a: 'b' } }).catch((e: unknown) => ConnectError.from(e));
    expect(unknown).toMatchObject({ code: Code.NotFound });
  });

  it('counts a node at the ceiling its token set, whatever it reports, and says so in an event', async () => {
    const ceiling = { cpuMillis: 2000, memoryMib: 2048, maxInstances: 4 };
    const boaster = await harness.addNode({
      capacity: { cpuMillis: 64_000, memoryMib: 1_048_576, maxInstances: 500 },
      tokenLabels: { pool: 'ceiling' },
      capacityCeiling: ceiling,
    });
    const [listed] = (await harness.nodeService.listNodes({})).nodes.filter((n) => n.id === boaster.nodeId);
    expect(listed?.capacity).toMatchObject(ceiling);
    expect(listed?.capacityCeiling).toMatchObject(ceiling);
    const clamped = harness.events.events.find((e) => e.nodeId === boaster.nodeId && /above the ceiling/.test(e.message));
    expect(clamped?.message).toMatch(/reported 64000m CPU, 1048576 MiB, 500 instances, .*placement counts on 2000m CPU, 2048 MiB, 4 instances/);

    // An app larger than the ceiling stays PENDING although the node claims room for it.
    await harness.deploy('greedy', spec({ resources: { cpuMillis: 1000, memoryMib: 4096 }, placement: { requiredLabels: { pool: 'ceiling' } } }));
    const pending = await harness.events.waitFor(
      (e) => e.app === 'greedy' && e.detail.case === 'placement' && e.detail.value.nodeId === '',
      10_000,
      'greedy PENDING',
    );
    expect(pending.message).toMatch(/4096 MiB/);
    expect(boaster.received.filter((r) => r.msg.case === 'assign')).toEqual([]);
  });

  it('lets an admin set a ceiling on a joined node (clamping its report at once, with an event), and lift it', async () => {
    const reported = { cpuMillis: 32_000, memoryMib: 65_536, maxInstances: 100 };
    const node = await harness.addNode({ capacity: reported, tokenLabels: { pool: 'later-ceiling' } });
    const ceiling = { cpuMillis: 1000, memoryMib: 1024, maxInstances: 2 };
    const { node: bounded } = await harness.nodeService.setNodeCapacityCeiling({ nodeId: node.nodeId, capacityCeiling: ceiling });
    expect(bounded?.capacity).toMatchObject(ceiling);
    expect(bounded?.capacityCeiling).toMatchObject(ceiling);
    await harness.events.waitFor((e) => e.nodeId === node.nodeId && /above the ceiling an admin set/.test(e.message), 10_000, 'the clamp event');

    // Placement counts on the ceiling, not on the report.
    await harness.deploy('big-for-ceiling', spec({ resources: { cpuMillis: 500, memoryMib: 2048 }, placement: { requiredLabels: { pool: 'later-ceiling' } } }));
    await harness.events.waitFor(
      (e) => e.app === 'big-for-ceiling' && e.detail.case === 'placement' && e.detail.value.nodeId === '',
      10_000,
      'big-for-ceiling PENDING',
    );
    expect(node.received.filter((r) => r.msg.case === 'assign')).toEqual([]);

    // Lifted: the node's report counts again and the pending app is placed.
    const { node: lifted } = await harness.nodeService.setNodeCapacityCeiling({ nodeId: node.nodeId });
    expect(lifted?.capacityCeiling).toBeUndefined();
    expect(lifted?.capacity).toMatchObject(reported);
    await node.waitForAssign((a) => a.spec?.app === 'big-for-ceiling', 15_000, 'the assignment once the ceiling is lifted');

    const tooBig = await harness.nodeService
      .setNodeCapacityCeiling({ nodeId: node.nodeId, capacityCeiling: { cpuMillis: 2 ** 31, memoryMib: 0, maxInstances: 0 } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(tooBig).toMatchObject({ code: Code.InvalidArgument });
    const unknown = await harness.nodeService
      .setNodeCapacityCeiling({ nodeId: 'nobody-00000000', capacityCeiling: ceiling })
      .catch((e: unknown) => ConnectError.from(e));
    expect(unknown).toMatchObject({ code: Code.NotFound });
  });
});
