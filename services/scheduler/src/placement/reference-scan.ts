import { freeScore } from './score.js';
import type { NodeView, PlacementRequest } from './types.js';

/**
 * The placement rules as a plain scan over every node, with no index: the
 * oracle the indexed engine is tested against and the baseline of the
 * benchmark. Returns the chosen node, or undefined when no node is feasible.
 *
 * Feasible: READY, carries every required label, has a free instance slot and
 * at least the requested CPU and memory free. Among feasible nodes the best is,
 * in order: fewest instances of the same app (replicas kept apart), then the
 * lowest free score after placement for binpack or the highest for spread,
 * then the smallest node id.
 */
export function referenceChoose<T extends NodeView>(nodes: Iterable<T>, request: PlacementRequest, memoryMibPerCpu: number): T | undefined {
  const { cpuMillis, memoryMib } = request.resources;
  const required = Object.entries(request.requiredLabels ?? {});
  const spread = request.strategy === 'spread';
  let best: T | undefined;
  let bestSameApp = 0;
  let bestScore = 0;
  for (const node of nodes) {
    if (node.state !== 'READY') continue;
    if (!required.every(([key, value]) => node.labels.get(key) === value)) continue;
    if (node.instanceCount >= node.capacity.maxInstances) continue;
    const freeCpu = node.capacity.cpuMillis - node.allocatedCpuMillis;
    const freeMemory = node.capacity.memoryMib - node.allocatedMemoryMib;
    if (freeCpu < cpuMillis || freeMemory < memoryMib) continue;
    const sameApp = node.appInstanceCount(request.app);
    const score = freeScore(freeCpu - cpuMillis, freeMemory - memoryMib, memoryMibPerCpu);
    if (best === undefined || isBetter(sameApp, score, node.id, bestSameApp, bestScore, best.id, spread)) {
      best = node;
      bestSameApp = sameApp;
      bestScore = score;
    }
  }
  return best;
}

function isBetter(sameApp: number, score: number, id: string, bestSameApp: number, bestScore: number, bestId: string, spread: boolean): boolean {
  if (sameApp !== bestSameApp) return sameApp < bestSameApp;
  if (score !== bestScore) return spread ? score > bestScore : score < bestScore;
  return id < bestId;
}
