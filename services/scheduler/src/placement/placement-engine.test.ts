import { beforeEach, describe, expect, it } from 'vitest';
import { PlacementError } from './errors.js';
import { PlacementEngine } from './placement-engine.js';
import { referenceChoose } from './reference-scan.js';
import { DEFAULT_MEMORY_MIB_PER_CPU } from './score.js';
import { SeededRandom } from './seeded-random.js';
import type { NodeCapacity, NodeSpec, NodeState, PlacementRequest, PlacementStrategy } from './types.js';

const capacity = (cpuMillis: number, memoryMib: number, maxInstances = 10): NodeCapacity => ({ cpuMillis, memoryMib, maxInstances });

function node(id: string, cap: NodeCapacity = capacity(4000, 8192), labels: Record<string, string> = {}, state: NodeState = 'READY'): NodeSpec {
  return { id, state, labels, capacity: cap };
}

let sequence = 0;
function request(app: string, cpuMillis: number, memoryMib: number, extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return { instanceId: `i-${sequence++}`, app, resources: { cpuMillis, memoryMib }, ...extra };
}

function engineWith(...nodes: NodeSpec[]): PlacementEngine {
  const engine = new PlacementEngine();
  for (const spec of nodes) engine.upsertNode(spec);
  return engine;
}

function use(engine: PlacementEngine, nodeId: string, cpuMillis: number, memoryMib: number, app = `filler-${sequence}`): string {
  const instanceId = `used-${sequence++}`;
  engine.assign({ instanceId, app, nodeId, resources: { cpuMillis, memoryMib } });
  return instanceId;
}

function placedOn(engine: PlacementEngine, req: PlacementRequest): string {
  const result = engine.place(req);
  if (result.pending) throw new Error(`expected a placement, got pending: ${result.pending.reason}`);
  return result.nodeId;
}

describe('PlacementEngine scoring', () => {
  let engine: PlacementEngine;
  beforeEach(() => {
    engine = engineWith(node('a'), node('b'), node('c'));
    use(engine, 'a', 3000, 6144);
    use(engine, 'b', 1000, 2048);
  });

  it('bin-packs onto the fullest node that still fits', () => {
    expect(placedOn(engine, request('web', 500, 512, { strategy: 'binpack' }))).toBe('a');
    // a has 500 millicores left now: too little, so the next fullest.
    expect(placedOn(engine, request('api', 1000, 1024, { strategy: 'binpack' }))).toBe('b');
  });

  it('bin-packs by default', () => {
    expect(placedOn(engine, request('web', 500, 512))).toBe('a');
  });

  it('spreads onto the emptiest node when asked', () => {
    expect(placedOn(engine, request('web', 500, 512, { strategy: 'spread' }))).toBe('c');
    // c still has the most free, even after taking one.
    expect(placedOn(engine, request('api', 500, 512, { strategy: 'spread' }))).toBe('c');
    // A web replica is on c already: the emptiest of the others.
    expect(placedOn(engine, request('web', 500, 512, { strategy: 'spread' }))).toBe('b');
  });

  it('choose answers without reserving', () => {
    const req = request('web', 3000, 6144, { strategy: 'spread' });
    expect(engine.choose(req)).toEqual({ nodeId: 'c' });
    expect(engine.choose(req)).toEqual({ nodeId: 'c' });
    expect(engine.getNode('c')?.instanceCount).toBe(0);
    expect(engine.getAllocation(req.instanceId)).toBeUndefined();
  });

  it('weighs CPU against memory by the configured exchange rate', () => {
    // x: 4000 millicores and 1024 MiB free; y: 1000 millicores and 8192 MiB free.
    const placeWithRate = (memoryMibPerCpu: number): string => {
      const rated = new PlacementEngine({ memoryMibPerCpu });
      rated.upsertNode(node('x', capacity(4000, 1024)));
      rated.upsertNode(node('y', capacity(1000, 8192)));
      return placedOn(rated, request('web', 100, 100));
    };
    // At 4 GiB per vCPU x holds 5 vCPU-equivalents and y 3: y is fuller.
    expect(placeWithRate(4096)).toBe('y');
    // At 512 MiB per vCPU x holds 6 and y 17: x is fuller.
    expect(placeWithRate(512)).toBe('x');
  });
});

describe('PlacementEngine anti-affinity', () => {
  it('puts each replica on its own node before doubling up, even when bin-packing', () => {
    const engine = engineWith(node('a'), node('b'), node('c'));
    const first = ['web', 'web', 'web'].map((app) => placedOn(engine, request(app, 500, 512)));
    expect(first.sort()).toEqual(['a', 'b', 'c']);
    // Every node has one now: the fourth doubles up on the fullest (all equal: smallest id)...
    expect(placedOn(engine, request('web', 500, 512))).toBe('a');
    // ...and the fifth goes where there is only one.
    expect(placedOn(engine, request('web', 500, 512))).toBe('b');
  });

  it('prefers a node without a replica over a fuller one with a replica', () => {
    const engine = engineWith(node('a'), node('b'));
    use(engine, 'a', 2000, 2048, 'web');
    expect(placedOn(engine, request('web', 500, 512))).toBe('b');
  });

  it('prefers fewer replicas over a better score', () => {
    const engine = engineWith(node('a'), node('b'));
    use(engine, 'a', 500, 512, 'web');
    use(engine, 'a', 500, 512, 'web');
    use(engine, 'a', 2000, 2048, 'other');
    use(engine, 'b', 100, 100, 'web');
    expect(placedOn(engine, request('web', 500, 512, { strategy: 'binpack' }))).toBe('b');
  });

  it('doubles up when the only nodes without a replica are full', () => {
    const engine = engineWith(node('a'), node('b', capacity(1000, 1024)));
    use(engine, 'a', 500, 512, 'web');
    use(engine, 'b', 800, 512);
    expect(placedOn(engine, request('web', 500, 512))).toBe('a');
    expect(engine.getNode('a')?.appInstances.web).toBe(2);
  });

  it('forgets a replica once it is released', () => {
    const engine = engineWith(node('a'), node('b'));
    use(engine, 'b', 100, 100, 'other');
    const replica = use(engine, 'b', 500, 512, 'web');
    expect(placedOn(engine, request('web', 500, 512))).toBe('a');
    engine.release(replica);
    expect(engine.getNode('b')?.appInstances).toEqual({ other: 1 });
    expect(engine.getNode('b')?.appInstances.web).toBeUndefined();
    // a now holds web and b does not: b wins although a is fuller.
    expect(placedOn(engine, request('web', 100, 100))).toBe('b');
  });
});

describe('PlacementEngine feasibility', () => {
  it.each<NodeState>(['CORDONED', 'DRAINING', 'DOWN'])('never places on a %s node, and does again once it is READY', (state) => {
    const engine = engineWith(node('a'), node('b'));
    use(engine, 'a', 3000, 4096);
    engine.setNodeState('a', state);
    expect(placedOn(engine, request('web', 100, 100))).toBe('b');
    engine.setNodeState('a', 'READY');
    expect(placedOn(engine, request('api', 100, 100))).toBe('a');
  });

  it('requires every label with its exact value', () => {
    const engine = engineWith(
      node('a', undefined, { zone: 'eu', disk: 'hdd' }),
      node('b', undefined, { zone: 'eu', disk: 'ssd' }),
      node('c', undefined, { zone: 'us', disk: 'ssd' }),
    );
    use(engine, 'c', 3000, 4096);
    expect(placedOn(engine, request('db', 100, 100, { requiredLabels: { zone: 'eu', disk: 'ssd' } }))).toBe('b');
    expect(placedOn(engine, request('db2', 100, 100, { requiredLabels: { disk: 'ssd' } }))).toBe('c');
    engine.upsertNode(node('a', undefined, { zone: 'eu', disk: 'ssd' }));
    engine.upsertNode(node('c', undefined, { zone: 'us' }));
    expect(placedOn(engine, request('db3', 100, 100, { requiredLabels: { disk: 'ssd' }, strategy: 'spread' }))).toBe('a');
    expect(engine.place(request('db4', 100, 100, { requiredLabels: { disk: 'ssd', zone: 'us' } })).pending?.constraint).toBe('labels');
  });

  it('stops at the instance limit and reopens the slot on release', () => {
    const engine = engineWith(node('a', capacity(4000, 8192, 1)), node('b', capacity(8000, 16384, 5)));
    const first = request('web', 100, 100);
    expect(placedOn(engine, first)).toBe('a');
    expect(placedOn(engine, request('api', 100, 100))).toBe('b');
    expect(engine.release(first.instanceId)?.nodeId).toBe('a');
    expect(placedOn(engine, request('api2', 100, 100))).toBe('a');
  });

  it('breaks ties by node id, compared as strings', () => {
    const engine = engineWith(node('n2'), node('n10'), node('n1'));
    expect(placedOn(engine, request('a', 100, 100, { strategy: 'binpack' }))).toBe('n1');
    expect(placedOn(engine, request('b', 100, 100, { strategy: 'spread' }))).toBe('n10');
    expect(placedOn(engine, request('c', 100, 100, { strategy: 'spread' }))).toBe('n2');
  });

  it('gives back capacity on release', () => {
    const engine = engineWith(node('a', capacity(1000, 1024)));
    const big = request('web', 1000, 1024);
    expect(placedOn(engine, big)).toBe('a');
    expect(engine.place(request('web', 1000, 1024)).pending?.constraint).toBe('cpu-and-memory');
    expect(engine.release(big.instanceId)).toEqual({ instanceId: big.instanceId, app: 'web', nodeId: 'a', resources: big.resources });
    expect(engine.release(big.instanceId)).toBeUndefined();
    expect(engine.release('never-placed')).toBeUndefined();
    expect(engine.getNode('a')?.allocated).toEqual({ cpuMillis: 0, memoryMib: 0 });
    expect(placedOn(engine, request('web', 1000, 1024))).toBe('a');
  });
});

describe('PlacementEngine bookkeeping', () => {
  it('records existing allocations as they are, overcommitted or not', () => {
    const engine = engineWith(node('a', capacity(1000, 1024)), node('b'));
    use(engine, 'a', 1500, 2048, 'legacy');
    expect(engine.getNode('a')?.allocated).toEqual({ cpuMillis: 1500, memoryMib: 2048 });
    expect(placedOn(engine, request('web', 100, 100))).toBe('b');
  });

  it('keeps allocations when a node reports new capacity', () => {
    const engine = engineWith(node('a', capacity(4000, 8192)));
    use(engine, 'a', 1000, 4096, 'web');
    engine.upsertNode(node('a', capacity(2000, 4608), { zone: 'eu' }));
    expect(engine.getNode('a')).toMatchObject({ allocated: { cpuMillis: 1000, memoryMib: 4096 }, instanceCount: 1, labels: { zone: 'eu' } });
    expect(engine.place(request('api', 500, 1024)).pending?.reason).toBe('no node with 1024 MiB free; largest free is 512 MiB on a');
    expect(placedOn(engine, request('api', 500, 512))).toBe('a');
  });

  it('hands back the allocations of a removed node and forgets them', () => {
    const engine = engineWith(node('a'), node('b'));
    const onA = [use(engine, 'a', 100, 100, 'web'), use(engine, 'a', 100, 100, 'api')];
    const onB = use(engine, 'b', 100, 100, 'web');
    const dropped = engine.removeNode('a');
    expect(dropped.map((allocation) => allocation.instanceId).sort()).toEqual([...onA].sort());
    expect(engine.getAllocation(onA[0] as string)).toBeUndefined();
    expect(engine.getAllocation(onB)?.nodeId).toBe('b');
    expect(engine.instanceCount).toBe(1);
    expect(engine.nodeCount).toBe(1);
    expect(engine.getNode('a')).toBeUndefined();
    // The instance can be placed again under the same id.
    expect(placedOn(engine, { ...request('web', 100, 100), instanceId: onA[0] as string })).toBe('b');
    engine.upsertNode(node('a'));
    expect(engine.getNode('a')?.instanceCount).toBe(0);
    expect(placedOn(engine, request('api', 100, 100))).toBe('b');
  });

  it('hands out detached snapshots, listed by id', () => {
    const engine = engineWith(node('b'), node('a', undefined, { zone: 'eu' }));
    use(engine, 'a', 100, 200, 'web');
    const snapshot = engine.getNode('a');
    expect(snapshot).toEqual({
      id: 'a',
      state: 'READY',
      labels: { zone: 'eu' },
      capacity: { cpuMillis: 4000, memoryMib: 8192, maxInstances: 10 },
      allocated: { cpuMillis: 100, memoryMib: 200 },
      instanceCount: 1,
      appInstances: { web: 1 },
    });
    (snapshot?.labels as Record<string, string>).zone = 'us';
    expect(engine.getNode('a')?.labels).toEqual({ zone: 'eu' });
    expect(engine.listNodes().map((n) => n.id)).toEqual(['a', 'b']);
    expect(engine.allocationsOn('a').map((allocation) => allocation.app)).toEqual(['web']);
  });
});

describe('PlacementEngine input errors', () => {
  const engine = engineWith(node('a'));

  function errorOf(action: () => unknown): PlacementError {
    try {
      action();
    } catch (error) {
      if (error instanceof PlacementError) return error;
      throw error;
    }
    throw new Error('expected a PlacementError');
  }

  it.each<[string, PlacementRequest, RegExp]>([
    ['negative cpu', request('web', -1, 100), /^resources\.cpuMillis must be a positive integer .* got -1$/],
    ['zero memory', request('web', 100, 0), /^resources\.memoryMib must be a positive integer/],
    ['fractional cpu', request('web', 0.5, 100), /^resources\.cpuMillis/],
    ['huge memory', request('web', 1, 2 ** 32), /^resources\.memoryMib .* no larger than 4294967295/],
    ['empty app', request('', 100, 100), /^app must be a non-empty string$/],
    ['empty instance id', { ...request('web', 100, 100), instanceId: '' }, /^instanceId must be a non-empty string$/],
    ['unknown strategy', request('web', 100, 100, { strategy: 'random' as PlacementStrategy }), /^strategy must be "binpack" or "spread", got "random"$/],
    ['empty label key', request('web', 100, 100, { requiredLabels: { '': 'x' } }), /^requiredLabels has an empty label key$/],
  ])('rejects a request with %s', (_, bad, message) => {
    for (const action of [() => engine.place(bad), () => engine.choose(bad)]) {
      const error = errorOf(action);
      expect(error.code).toBe('invalid-argument');
      expect(error.message).toMatch(message);
    }
    expect(engine.instanceCount).toBe(0);
  });

  it('rejects bad node specs naming the node and field', () => {
    const bad = (spec: NodeSpec): PlacementError => errorOf(() => engine.upsertNode(spec));
    expect(bad(node('')).message).toBe('node.id must be a non-empty string');
    expect(bad(node('x', capacity(-1, 10))).message).toMatch(/^node x: capacity\.cpuMillis must be a non-negative integer/);
    expect(bad({ ...node('x'), state: 'BROKEN' as NodeState }).message).toBe('node x: state must be one of READY, CORDONED, DRAINING, DOWN, got "BROKEN"');
    expect(engine.getNode('x')).toBeUndefined();
  });

  it('reports unknown nodes as not-found and placed instances as already-exists', () => {
    const placed = request('web', 100, 100);
    engine.place(placed);
    expect(errorOf(() => engine.place(placed))).toMatchObject({ code: 'already-exists', message: `instance ${placed.instanceId} is already placed` });
    expect(errorOf(() => engine.assign({ instanceId: placed.instanceId, app: 'web', nodeId: 'a', resources: placed.resources })).code).toBe('already-exists');
    for (const action of [
      () => engine.setNodeState('nope', 'READY'),
      () => engine.removeNode('nope'),
      () => engine.allocationsOn('nope'),
      () => engine.assign({ instanceId: 'fresh', app: 'web', nodeId: 'nope', resources: placed.resources }),
    ]) {
      expect(errorOf(action)).toMatchObject({ code: 'not-found', message: 'node nope is not known to the scheduler' });
    }
    expect(errorOf(() => engine.setNodeState('a', 'GONE' as NodeState)).code).toBe('invalid-argument');
    engine.release(placed.instanceId);
  });

  it('rejects an exchange rate that would make scores inexact', () => {
    expect(errorOf(() => new PlacementEngine({ memoryMibPerCpu: 0 })).code).toBe('invalid-argument');
    expect(errorOf(() => new PlacementEngine({ memoryMibPerCpu: 2 ** 21 })).message).toMatch(/^memoryMibPerCpu must be an integer from 1 to 1048576/);
  });
});

describe('PlacementEngine at scale', () => {
  it('looks at a few nodes per placement in a 2,000-node cluster, and still agrees with the reference scan', () => {
    const random = new SeededRandom(7);
    const engine = new PlacementEngine();
    for (let i = 0; i < 2000; i++) {
      engine.upsertNode(
        node(`node-${String(i).padStart(4, '0')}`, capacity(64_000, 262_144 - random.int(0, 1023), 110), { zone: random.pick(['a', 'b', 'c']) }),
      );
    }
    const sizes = [
      [250, 256],
      [500, 512],
      [1000, 2048],
    ] as const;
    const next = (strategy: PlacementStrategy): PlacementRequest => {
      const [cpuMillis, memoryMib] = random.pick(sizes);
      return request(`app-${random.int(0, 999)}`, cpuMillis, memoryMib, {
        strategy,
        requiredLabels: random.chance(0.2) ? { zone: random.pick(['a', 'b', 'c']) } : undefined,
      });
    };
    for (let i = 0; i < 12_000; i++) engine.place(next(random.chance(0.7) ? 'binpack' : 'spread'));

    for (const strategy of ['binpack', 'spread'] as const) {
      const before = engine.stats();
      for (let i = 0; i < 200; i++) {
        const req = next(strategy);
        const expected = referenceChoose(engine.nodeViews(), req, DEFAULT_MEMORY_MIB_PER_CPU)?.id;
        expect(engine.place(req).nodeId).toBe(expected);
      }
      const after = engine.stats();
      const perDecision = (after.nodesExamined - before.nodesExamined) / (after.decisions - before.decisions);
      // A scan would look at all 2,000.
      expect(perDecision).toBeLessThan(50);
    }
  });
});
