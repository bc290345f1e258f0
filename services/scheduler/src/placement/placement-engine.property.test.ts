import { describe, expect, it } from 'vitest';
import { explainPending } from './explain-pending.js';
import { PlacementEngine } from './placement-engine.js';
import { referenceChoose } from './reference-scan.js';
import { freeScore } from './score.js';
import { SeededRandom } from './seeded-random.js';
import type { NodeCapacity, NodeSpec, NodeState, NodeView, PlacementRequest } from './types.js';

// The indexed engine against the reference scan on random clusters and
// operation sequences. The oracle reads a model the test keeps itself, so a
// bookkeeping slip in the engine shows up as a different choice too.

interface ModelAllocation {
  readonly nodeId: string;
  readonly app: string;
  readonly cpuMillis: number;
  readonly memoryMib: number;
}

class Model {
  readonly nodes = new Map<string, NodeSpec>();
  readonly allocations = new Map<string, ModelAllocation>();

  views(): NodeView[] {
    const views = new Map<string, { cpu: number; memory: number; count: number; apps: Map<string, number> }>();
    for (const id of this.nodes.keys()) views.set(id, { cpu: 0, memory: 0, count: 0, apps: new Map() });
    for (const allocation of this.allocations.values()) {
      const used = views.get(allocation.nodeId);
      if (used === undefined) throw new Error(`model allocation on missing node ${allocation.nodeId}`);
      used.cpu += allocation.cpuMillis;
      used.memory += allocation.memoryMib;
      used.count++;
      used.apps.set(allocation.app, (used.apps.get(allocation.app) ?? 0) + 1);
    }
    return [...this.nodes.values()].map((spec) => {
      const used = views.get(spec.id);
      if (used === undefined) throw new Error('unreachable');
      return {
        id: spec.id,
        state: spec.state,
        labels: new Map(Object.entries(spec.labels)),
        capacity: spec.capacity,
        allocatedCpuMillis: used.cpu,
        allocatedMemoryMib: used.memory,
        instanceCount: used.count,
        appInstanceCount: (app: string) => used.apps.get(app) ?? 0,
      };
    });
  }
}

const STATES: readonly NodeState[] = ['READY', 'READY', 'READY', 'READY', 'READY', 'READY', 'CORDONED', 'DRAINING', 'DOWN'];
const SHAPES: readonly NodeCapacity[] = [
  { cpuMillis: 4000, memoryMib: 8192, maxInstances: 20 },
  { cpuMillis: 8000, memoryMib: 16384, maxInstances: 30 },
  { cpuMillis: 16000, memoryMib: 65536, maxInstances: 110 },
];
const CPU_SIZES = [100, 250, 500, 1000, 2000, 4000] as const;
const MEMORY_SIZES = [64, 128, 256, 512, 1024, 2048, 4096] as const;

function randomCapacity(random: SeededRandom): NodeCapacity {
  if (random.chance(0.8)) return random.pick(SHAPES);
  return { cpuMillis: random.int(0, 20000), memoryMib: random.int(0, 40000), maxInstances: random.int(0, 6) };
}

function randomLabels(random: SeededRandom): Record<string, string> {
  const labels: Record<string, string> = {};
  if (random.chance(0.9)) labels.zone = random.pick(['a', 'b', 'c']);
  if (random.chance(0.5)) labels.disk = random.pick(['ssd', 'hdd']);
  if (random.chance(0.08)) labels.gpu = 'true';
  return labels;
}

function randomNode(random: SeededRandom, id: string): NodeSpec {
  return { id, state: random.pick(STATES), labels: randomLabels(random), capacity: randomCapacity(random) };
}

function randomSize(random: SeededRandom): { cpuMillis: number; memoryMib: number } {
  if (random.chance(0.1)) return { cpuMillis: random.int(1, 9000), memoryMib: random.int(1, 20000) };
  return { cpuMillis: random.pick(CPU_SIZES), memoryMib: random.pick(MEMORY_SIZES) };
}

function randomRequiredLabels(random: SeededRandom): Record<string, string> | undefined {
  const roll = random.next();
  if (roll < 0.55) return undefined;
  if (roll < 0.8) return { zone: random.pick(['a', 'b', 'c']) };
  if (roll < 0.9) return { zone: random.pick(['a', 'b']), disk: random.pick(['ssd', 'hdd']) };
  if (roll < 0.97) return { gpu: 'true' };
  return { zone: 'mars' };
}

function nodeCount(random: SeededRandom): number {
  const roll = random.next();
  if (roll < 0.03) return 0;
  if (roll < 0.35) return random.int(1, 8);
  if (roll < 0.92) return random.int(9, 60);
  return random.int(100, 250);
}

describe('PlacementEngine against the reference scan', () => {
  it('chooses exactly the reference node on 1,200 random clusters', () => {
    const random = new SeededRandom(0x5eed_cafe);
    const tally = { placed: 0, pending: 0, colocated: 0, ties: 0, spread: 0, labelled: 0, chosenOnly: 0 };
    for (let caseNumber = 0; caseNumber < 1200; caseNumber++) {
      const memoryMibPerCpu = random.pick([4096, 4096, 1024, 512]);
      const engine = new PlacementEngine({ memoryMibPerCpu });
      const model = new Model();
      const apps = Array.from({ length: random.int(1, 8) }, (_, i) => `app-${i}`);
      let nextNode = 0;
      let nextInstance = 0;
      const addNode = (): void => {
        const spec = randomNode(random, `node-${String(nextNode++).padStart(3, '0')}`);
        engine.upsertNode(spec);
        model.nodes.set(spec.id, spec);
      };
      const total = nodeCount(random);
      for (let i = 0; i < total; i++) addNode();

      // Existing instances as a database load or a Hello would report them, overcommit included.
      const nodeIds = [...model.nodes.keys()];
      const preplaced = nodeIds.length === 0 ? 0 : random.int(0, nodeIds.length * 3);
      for (let i = 0; i < preplaced; i++) {
        const nodeId = random.pick(nodeIds);
        const size = randomSize(random);
        const instanceId = `i-${nextInstance++}`;
        const app = random.pick(apps);
        engine.assign({ instanceId, app, nodeId, resources: size });
        model.allocations.set(instanceId, { nodeId, app, ...size });
      }

      const context = (step: number): string => `case ${caseNumber}, step ${step}`;
      for (let step = 0; step < 40; step++) {
        const roll = random.next();
        if (roll < 0.62) {
          const request: PlacementRequest = {
            instanceId: `i-${nextInstance++}`,
            app: random.pick(apps),
            resources: randomSize(random),
            requiredLabels: randomRequiredLabels(random),
            strategy: random.chance(0.5) ? 'spread' : random.chance(0.5) ? 'binpack' : undefined,
          };
          const views = model.views();
          const expected = referenceChoose(views, request, memoryMibPerCpu);
          const onlyChoose = random.chance(0.05);
          const actual = onlyChoose ? engine.choose(request) : engine.place(request);
          if (expected === undefined) {
            expect(actual, context(step)).toEqual({ pending: explainPending(views, request) });
            tally.pending++;
            continue;
          }
          expect(actual.nodeId, context(step)).toBe(expected.id);
          tally.placed++;
          if (onlyChoose) tally.chosenOnly++;
          if (request.strategy === 'spread') tally.spread++;
          if (request.requiredLabels !== undefined) tally.labelled++;
          if (expected.appInstanceCount(request.app) > 0) tally.colocated++;
          if (countTied(views, request, expected, memoryMibPerCpu) > 1) tally.ties++;
          if (!onlyChoose) {
            model.allocations.set(request.instanceId, { nodeId: expected.id, app: request.app, ...request.resources });
          }
        } else if (roll < 0.78) {
          const ids = [...model.allocations.keys()];
          if (ids.length === 0) continue;
          const instanceId = random.pick(ids);
          expect(engine.release(instanceId)?.instanceId, context(step)).toBe(instanceId);
          model.allocations.delete(instanceId);
        } else if (roll < 0.86) {
          const ids = [...model.nodes.keys()];
          if (ids.length === 0) continue;
          const spec = model.nodes.get(random.pick(ids)) as NodeSpec;
          const changed = { ...spec, state: random.pick(STATES) };
          engine.setNodeState(changed.id, changed.state);
          model.nodes.set(changed.id, changed);
        } else if (roll < 0.93) {
          const ids = [...model.nodes.keys()];
          if (ids.length === 0) continue;
          const changed = randomNode(random, random.pick(ids));
          engine.upsertNode(changed);
          model.nodes.set(changed.id, changed);
        } else if (roll < 0.96) {
          const ids = [...model.nodes.keys()];
          if (ids.length === 0) continue;
          const nodeId = random.pick(ids);
          const expectedDropped = [...model.allocations].filter(([, a]) => a.nodeId === nodeId).map(([id]) => id);
          const dropped = engine.removeNode(nodeId).map((allocation) => allocation.instanceId);
          expect(dropped.sort(), context(step)).toEqual(expectedDropped.sort());
          for (const instanceId of expectedDropped) model.allocations.delete(instanceId);
          model.nodes.delete(nodeId);
        } else {
          addNode();
        }
      }
      expect(snapshotsOf(engine, apps), `case ${caseNumber} bookkeeping`).toEqual(snapshotsOf(model, apps));
      expect(engine.instanceCount, `case ${caseNumber} instances`).toBe(model.allocations.size);
    }
    // The random mix must actually exercise what the oracle is there to check.
    expect(tally.placed).toBeGreaterThan(18_000);
    expect(tally.pending).toBeGreaterThan(3_000);
    expect(tally.colocated).toBeGreaterThan(2_000);
    expect(tally.ties).toBeGreaterThan(1_500);
    expect(tally.spread).toBeGreaterThan(8_000);
    expect(tally.labelled).toBeGreaterThan(6_000);
    expect(tally.chosenOnly).toBeGreaterThan(500);
  });
});

/** How many feasible nodes share the chosen node's rank, so the id tie-break decided. */
function countTied(views: readonly NodeView[], request: PlacementRequest, chosen: NodeView, memoryMibPerCpu: number): number {
  const { cpuMillis, memoryMib } = request.resources;
  const rank = (node: NodeView): string =>
    `${node.appInstanceCount(request.app)}/${freeScore(
      node.capacity.cpuMillis - node.allocatedCpuMillis - cpuMillis,
      node.capacity.memoryMib - node.allocatedMemoryMib - memoryMib,
      memoryMibPerCpu,
    )}`;
  const wanted = rank(chosen);
  return views.filter((node) => referenceChoose([node], request, memoryMibPerCpu) !== undefined && rank(node) === wanted).length;
}

function snapshotsOf(source: PlacementEngine | Model, apps: readonly string[]): unknown[] {
  const views = source instanceof PlacementEngine ? [...source.nodeViews()] : source.views();
  return views
    .map((view) => ({
      apps: apps.map((app) => view.appInstanceCount(app)),
      id: view.id,
      state: view.state,
      labels: Object.fromEntries(view.labels),
      capacity: { ...view.capacity },
      cpu: view.allocatedCpuMillis,
      memory: view.allocatedMemoryMib,
      count: view.instanceCount,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}
