import { describe, expect, it } from 'vitest';
import { explainPending } from './explain-pending.js';
import { PlacementEngine } from './placement-engine.js';
import type { NodeCapacity, NodeState, Pending, PlacementRequest } from './types.js';

const capacity = (cpuMillis: number, memoryMib: number, maxInstances = 10): NodeCapacity => ({ cpuMillis, memoryMib, maxInstances });

interface NodeSetup {
  readonly cap?: NodeCapacity;
  /** CPU and memory already allocated (both positive, as allocations are). */
  readonly used?: readonly [number, number];
  readonly labels?: Record<string, string>;
  readonly state?: NodeState;
}

let sequence = 0;

/** Builds a cluster, places `request` through the engine and returns why it stayed pending. */
function pendingFor(nodes: Record<string, NodeSetup>, cpuMillis: number, memoryMib: number, requiredLabels?: Record<string, string>): Pending {
  const engine = new PlacementEngine();
  for (const [id, setup] of Object.entries(nodes)) {
    engine.upsertNode({ id, state: setup.state ?? 'READY', labels: setup.labels ?? {}, capacity: setup.cap ?? capacity(4000, 4096) });
    if (setup.used !== undefined) {
      engine.assign({ instanceId: `used-${sequence++}`, app: 'filler', nodeId: id, resources: { cpuMillis: setup.used[0], memoryMib: setup.used[1] } });
    }
  }
  const request: PlacementRequest = { instanceId: `i-${sequence++}`, app: 'web', resources: { cpuMillis, memoryMib }, requiredLabels };
  const result = engine.place(request);
  if (result.pending === undefined) throw new Error(`expected pending, was placed on ${result.nodeId}`);
  expect(engine.getAllocation(request.instanceId)).toBeUndefined();
  return result.pending;
}

describe('pending reasons', () => {
  it('says when no node has joined', () => {
    expect(pendingFor({}, 100, 100)).toEqual({ constraint: 'no-nodes', reason: 'no nodes have joined' });
  });

  it('names missing labels', () => {
    expect(pendingFor({ a: { labels: { zone: 'us' } }, b: {} }, 100, 100, { zone: 'eu' })).toEqual({
      constraint: 'labels',
      reason: 'no node has label zone=eu (2 nodes checked)',
    });
    expect(pendingFor({ a: { labels: { zone: 'eu' } } }, 100, 100, { zone: 'eu', disk: 'ssd' })).toEqual({
      constraint: 'labels',
      reason: 'no node has labels disk=ssd, zone=eu (1 node checked)',
    });
  });

  it('counts the matching nodes that are not READY, by state', () => {
    const nodes: Record<string, NodeSetup> = {
      a: { labels: { zone: 'eu' }, state: 'CORDONED' },
      b: { labels: { zone: 'eu' }, state: 'DOWN' },
      c: { labels: { zone: 'eu' }, state: 'CORDONED' },
      d: { labels: { zone: 'us' } },
    };
    expect(pendingFor(nodes, 100, 100, { zone: 'eu' })).toEqual({
      constraint: 'node-state',
      reason: 'no READY node has label zone=eu (2 nodes are cordoned, 1 is down)',
    });
    expect(pendingFor({ a: { state: 'DRAINING' } }, 100, 100)).toEqual({
      constraint: 'node-state',
      reason: 'no READY node (1 node is draining)',
    });
  });

  it('says when every candidate is at its instance limit', () => {
    const full = (labels?: Record<string, string>): NodeSetup => ({ cap: capacity(4000, 4096, 1), used: [1, 1], labels });
    expect(pendingFor({ a: full(), b: full() }, 100, 100)).toEqual({
      constraint: 'instance-slots',
      reason: 'no node has a free instance slot (all 2 READY ones are at their instance limit)',
    });
    expect(pendingFor({ a: full({ zone: 'eu' }), b: { labels: { zone: 'us' } } }, 100, 100, { zone: 'eu' })).toEqual({
      constraint: 'instance-slots',
      reason: 'no node with label zone=eu has a free instance slot (the only READY one is at its instance limit)',
    });
  });

  it('names the largest free memory and where it is', () => {
    const nodes: Record<string, NodeSetup> = { 'node-a': { used: [1, 3072] }, 'node-b': { used: [1, 3584] } };
    expect(pendingFor(nodes, 100, 2048)).toEqual({
      constraint: 'memory',
      reason: 'no node with 2048 MiB free; largest free is 1024 MiB on node-a',
    });
  });

  it('says when the request is bigger than any node, not just than what is free', () => {
    expect(pendingFor({ a: { cap: capacity(4000, 4096) }, b: { cap: capacity(4000, 2048) } }, 100, 8192)).toEqual({
      constraint: 'memory',
      reason: 'no node with 8192 MiB free; the largest node has 4096 MiB in total (a)',
    });
  });

  it('names the largest free CPU', () => {
    expect(pendingFor({ a: { used: [3500, 1] }, b: { used: [3000, 1] } }, 1500, 100)).toEqual({
      constraint: 'cpu',
      reason: 'no node with 1500 millicores free; largest free is 1000 millicores on b',
    });
  });

  it('names both when CPU and memory are short everywhere', () => {
    expect(pendingFor({ a: { used: [3500, 1024] }, b: { used: [3000, 3072] } }, 1500, 4000)).toEqual({
      constraint: 'cpu-and-memory',
      reason: 'no node with 1500 millicores and 4000 MiB free; largest free is 3072 MiB on a; largest free is 1000 millicores on b',
    });
  });

  it('explains fragmentation: enough of each somewhere, never both on one node', () => {
    expect(pendingFor({ a: { used: [3500, 1] }, b: { used: [1, 4000] } }, 1000, 1024)).toEqual({
      constraint: 'fragmentation',
      reason:
        'no node with both 1000 millicores and 1024 MiB free; most memory free: 4095 MiB on a (with 500 millicores), ' +
        'most CPU free: 3999 millicores on b (with 96 MiB)',
    });
  });

  it('scopes resource reasons to the required labels and mentions nodes left out by state', () => {
    const nodes: Record<string, NodeSetup> = {
      a: { labels: { zone: 'eu' }, used: [1, 3072] },
      b: { labels: { zone: 'eu' }, state: 'CORDONED' },
      c: { labels: { zone: 'us' } },
    };
    expect(pendingFor(nodes, 100, 2048, { zone: 'eu' })).toEqual({
      constraint: 'memory',
      reason: 'no node with label zone=eu has 2048 MiB free; largest free is 1024 MiB on a; not considered: 1 node is cordoned',
    });
  });

  it('picks the smallest id among equally large free amounts and shows overcommitted nodes as 0 free', () => {
    expect(pendingFor({ b: { used: [1, 3072] }, a: { used: [1, 3072] } }, 100, 2048).reason).toBe('no node with 2048 MiB free; largest free is 1024 MiB on a');
    expect(pendingFor({ a: { used: [1, 5000] } }, 100, 2048).reason).toBe('no node with 2048 MiB free; largest free is 0 MiB on a');
  });

  it('keeps reasons current as the cluster changes between retries', () => {
    const engine = new PlacementEngine();
    engine.upsertNode({ id: 'a', state: 'READY', labels: {}, capacity: capacity(4000, 4096) });
    engine.assign({ instanceId: 'old', app: 'db', nodeId: 'a', resources: { cpuMillis: 100, memoryMib: 3072 } });
    const retry = (): string | undefined =>
      engine.place({ instanceId: `big-${sequence++}`, app: 'web', resources: { cpuMillis: 100, memoryMib: 2048 } }).pending?.reason;
    expect(retry()).toBe('no node with 2048 MiB free; largest free is 1024 MiB on a');
    engine.place({ instanceId: 'small', app: 'api', resources: { cpuMillis: 100, memoryMib: 512 } });
    expect(retry()).toBe('no node with 2048 MiB free; largest free is 512 MiB on a');
    engine.release('small');
    expect(retry()).toBe('no node with 2048 MiB free; largest free is 1024 MiB on a');
    engine.setNodeState('a', 'CORDONED');
    expect(retry()).toBe('no READY node (1 node is cordoned)');
    engine.upsertNode({ id: 'b', state: 'READY', labels: {}, capacity: capacity(4000, 1024) });
    expect(retry()).toBe('no node with 2048 MiB free; the largest node has 1024 MiB in total (b); not considered: 1 node is cordoned');
    engine.removeNode('b');
    expect(retry()).toBe('no READY node (1 node is cordoned)');
    engine.setNodeState('a', 'READY');
    engine.release('old');
    expect(retry()).toBeUndefined();
  });

  it('refuses to explain a request that fits', () => {
    const engine = new PlacementEngine();
    engine.upsertNode({ id: 'a', state: 'READY', labels: {}, capacity: capacity(4000, 4096) });
    const request: PlacementRequest = { instanceId: 'x', app: 'web', resources: { cpuMillis: 100, memoryMib: 100 } };
    expect(() => explainPending(engine.nodeViews(), request)).toThrow(/node a fits instance x/);
  });
});
