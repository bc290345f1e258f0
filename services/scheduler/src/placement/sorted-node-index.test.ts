import { describe, expect, it } from 'vitest';
import { NodeRecord } from './node-record.js';
import { SeededRandom } from './seeded-random.js';
import { NO_POSITION, SortedNodeIndex } from './sorted-node-index.js';

function nodeWithFree(id: string, freeCpu: number, freeMemory: number): NodeRecord {
  const node = new NodeRecord({ id, state: 'READY', labels: {}, capacity: { cpuMillis: 10_000, memoryMib: 10_000, maxInstances: 10 } });
  node.allocatedCpuMillis = 10_000 - freeCpu;
  node.allocatedMemoryMib = 10_000 - freeMemory;
  return node;
}

function walk(index: SortedNodeIndex): Array<{ position: number; node: NodeRecord }> {
  const out: Array<{ position: number; node: NodeRecord }> = [];
  if (index.size === 0) return out;
  for (let position = index.lowerBound(-Infinity); position !== NO_POSITION; position = index.after(position)) {
    out.push({ position, node: index.at(position) });
  }
  return out;
}

const byKeyThenId = (a: NodeRecord, b: NodeRecord): number => a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describe('SortedNodeIndex', () => {
  it('keeps order, positions and room searches right through random inserts, updates and removes', () => {
    const random = new SeededRandom(42);
    const index = new SortedNodeIndex();
    const model: NodeRecord[] = [];
    let nextId = 0;
    let maxBlocks = 0;
    for (let step = 0; step < 6_000; step++) {
      const roll = random.next();
      // Grow to a few hundred nodes, shrink back to a handful, grow again: splits and merges both happen.
      const growing = step % 3_000 < 1_800;
      if (model.length === 0 || roll < (growing ? 0.45 : 0.15)) {
        const node = nodeWithFree(`n${String(nextId++).padStart(4, '0')}`, random.int(0, 20), random.int(0, 20));
        index.insert(node, random.int(0, 30));
        model.push(node);
      } else if (roll < (growing ? 0.6 : 0.75)) {
        const node = model.splice(random.int(0, model.length - 1), 1)[0] as NodeRecord;
        index.remove(node);
        expect(node.indexed).toBe(false);
      } else {
        const node = random.pick(model);
        node.allocatedCpuMillis = 10_000 - random.int(0, 20);
        node.allocatedMemoryMib = 10_000 - random.int(0, 20);
        index.update(node, random.chance(0.3) ? node.key : random.int(0, 30));
      }
      maxBlocks = Math.max(maxBlocks, index.blockCount);
      if (step % 7 !== 0) continue;

      model.sort(byKeyThenId);
      const walked = walk(index);
      expect(walked.map((entry) => entry.node)).toEqual(model);
      expect(index.size).toBe(model.length);
      const backwards: NodeRecord[] = [];
      for (let position = index.lastPosition(); position !== NO_POSITION; position = index.before(position)) {
        backwards.push(index.at(position));
      }
      expect(backwards.reverse()).toEqual(model);

      const key = random.int(-1, 31);
      const id = random.chance(0.5) ? '' : `n${String(random.int(0, nextId)).padStart(4, '0')}`;
      const expectedBound = model.findIndex((node) => node.key > key || (node.key === key && node.id >= id));
      const bound = index.lowerBound(key, id);
      expect(bound).toBe(expectedBound === -1 ? NO_POSITION : walked[expectedBound]?.position);

      if (model.length === 0) continue;
      const cpu = random.int(0, 21);
      const memory = random.int(0, 21);
      const from = random.int(0, model.length - 1);
      const to = random.int(0, model.length - 1);
      const fits = (i: number): boolean => {
        const node = model[i] as NodeRecord;
        return node.freeCpuMillis >= cpu && node.freeMemoryMib >= memory;
      };
      let expectedNext = NO_POSITION;
      for (let i = from; i <= to; i++) {
        if (fits(i)) {
          expectedNext = (walked[i] as { position: number }).position;
          break;
        }
      }
      let expectedPrevious = NO_POSITION;
      for (let i = to; i >= from; i--) {
        if (fits(i)) {
          expectedPrevious = (walked[i] as { position: number }).position;
          break;
        }
      }
      const fromPosition = (walked[from] as { position: number }).position;
      const toPosition = (walked[to] as { position: number }).position;
      expect(index.nextWithRoom(fromPosition, toPosition, cpu, memory)).toBe(expectedNext);
      expect(index.previousWithRoom(toPosition, fromPosition, cpu, memory)).toBe(expectedPrevious);
    }
    expect(maxBlocks).toBeGreaterThan(5);
  });

  it('refuses to remove a node whose key changed behind its back', () => {
    const index = new SortedNodeIndex();
    const a = nodeWithFree('a', 1, 1);
    index.insert(a, 5);
    index.insert(nodeWithFree('b', 1, 1), 7);
    a.key = 8;
    expect(() => index.remove(a)).toThrow(/node a is not filed under its key/);
  });

  it('answers searches on an empty index with NO_POSITION', () => {
    const index = new SortedNodeIndex();
    expect(index.lowerBound(0)).toBe(NO_POSITION);
    expect(index.lastPosition()).toBe(NO_POSITION);
    expect(index.nextWithRoom(index.lowerBound(0), index.lastPosition(), 1, 1)).toBe(NO_POSITION);
    expect(index.previousWithRoom(index.lastPosition(), index.lowerBound(0), 1, 1)).toBe(NO_POSITION);
  });
});
