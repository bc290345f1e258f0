import type { NodeState, NodeView, Pending, PlacementRequest } from './types.js';

const NOT_READY_STATES: readonly NodeState[] = ['CORDONED', 'DRAINING', 'DOWN'];

/**
 * Says why no node can take `request`, naming the first constraint that rules
 * out every node and the numbers an operator needs to act on it. Call it only
 * when placement found no feasible node; it walks every node once.
 */
export function explainPending(nodes: Iterable<NodeView>, request: PlacementRequest): Pending {
  const labels = Object.entries(request.requiredLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let total = 0;
  const matching: NodeView[] = [];
  for (const node of nodes) {
    total++;
    if (labels.every(([key, value]) => node.labels.get(key) === value)) matching.push(node);
  }
  if (total === 0) return { constraint: 'no-nodes', reason: 'no nodes have joined' };

  const labelText = labels.map(([key, value]) => `${key}=${value}`).join(', ');
  const labelPhrase = labels.length === 1 ? `label ${labelText}` : `labels ${labelText}`;
  if (matching.length === 0) {
    return { constraint: 'labels', reason: `no node has ${labelPhrase} (${plural(total, 'node')} checked)` };
  }

  const ready = matching.filter((node) => node.state === 'READY');
  const notReady = describeNotReady(matching);
  if (ready.length === 0) {
    const subject = labels.length > 0 ? `no READY node has ${labelPhrase}` : 'no READY node';
    return { constraint: 'node-state', reason: `${subject} (${notReady})` };
  }
  const ignored = notReady === '' ? '' : `; not considered: ${notReady}`;
  const scope = labels.length > 0 ? `no node with ${labelPhrase} has` : 'no node with';

  const withSlot = ready.filter((node) => node.instanceCount < node.capacity.maxInstances);
  if (withSlot.length === 0) {
    const limit = ready.length === 1 ? 'the only READY one is at its instance limit' : `all ${ready.length} READY ones are at their instance limit`;
    const subject = labels.length > 0 ? `no node with ${labelPhrase} has` : 'no node has';
    return { constraint: 'instance-slots', reason: `${subject} a free instance slot (${limit})${ignored}` };
  }

  const { cpuMillis, memoryMib } = request.resources;
  const mostMemory = maxBy(withSlot, freeMemory);
  const mostCpu = maxBy(withSlot, freeCpu);
  const memoryShort = freeMemory(mostMemory) < memoryMib;
  const cpuShort = freeCpu(mostCpu) < cpuMillis;
  const memoryText = shortage(withSlot, mostMemory, memoryMib, 'MiB', freeMemory, (node) => node.capacity.memoryMib);
  const cpuText = shortage(withSlot, mostCpu, cpuMillis, 'millicores', freeCpu, (node) => node.capacity.cpuMillis);
  if (memoryShort && cpuShort) {
    return {
      constraint: 'cpu-and-memory',
      reason: `${scope} ${cpuMillis} millicores and ${memoryMib} MiB free; ${memoryText}; ${cpuText}${ignored}`,
    };
  }
  if (memoryShort) return { constraint: 'memory', reason: `${scope} ${memoryMib} MiB free; ${memoryText}${ignored}` };
  if (cpuShort) return { constraint: 'cpu', reason: `${scope} ${cpuMillis} millicores free; ${cpuText}${ignored}` };

  const fits = withSlot.find((node) => freeCpu(node) >= cpuMillis && freeMemory(node) >= memoryMib);
  if (fits !== undefined) {
    throw new Error(`explainPending called although node ${fits.id} fits instance ${request.instanceId}`);
  }
  return {
    constraint: 'fragmentation',
    reason:
      `${scope} both ${cpuMillis} millicores and ${memoryMib} MiB free; ` +
      `most memory free: ${shown(freeMemory(mostMemory))} MiB on ${mostMemory.id} (with ${shown(freeCpu(mostMemory))} millicores), ` +
      `most CPU free: ${shown(freeCpu(mostCpu))} millicores on ${mostCpu.id} (with ${shown(freeMemory(mostCpu))} MiB)${ignored}`,
  };
}

function freeCpu(node: NodeView): number {
  return node.capacity.cpuMillis - node.allocatedCpuMillis;
}

function freeMemory(node: NodeView): number {
  return node.capacity.memoryMib - node.allocatedMemoryMib;
}

/** Overcommitted nodes (possible after reconciling what a node reports) show as 0 free. */
function shown(free: number): number {
  return Math.max(0, free);
}

/** The node with the largest value; the smallest id among equals, so messages are stable. */
function maxBy(nodes: readonly NodeView[], value: (node: NodeView) => number): NodeView {
  let best = nodes[0] as NodeView;
  for (const node of nodes) {
    const difference = value(node) - value(best);
    if (difference > 0 || (difference === 0 && node.id < best.id)) best = node;
  }
  return best;
}

/**
 * "largest free is X on node-a", or, when no node is big enough even empty,
 * "the largest node has X in total (node-a)": a different fix (a bigger node
 * or a smaller request instead of freeing capacity).
 */
function shortage(
  nodes: readonly NodeView[],
  mostFree: NodeView,
  wanted: number,
  unit: string,
  free: (node: NodeView) => number,
  capacity: (node: NodeView) => number,
): string {
  const largest = maxBy(nodes, capacity);
  if (capacity(largest) < wanted) {
    return `the largest node has ${capacity(largest)} ${unit} in total (${largest.id})`;
  }
  return `largest free is ${shown(free(mostFree))} ${unit} on ${mostFree.id}`;
}

/** "2 nodes are cordoned, 1 is down" for the label-matching nodes that are not READY. */
function describeNotReady(nodes: readonly NodeView[]): string {
  const parts: string[] = [];
  for (const state of NOT_READY_STATES) {
    const count = nodes.filter((node) => node.state === state).length;
    if (count === 0) continue;
    const verb = count === 1 ? 'is' : 'are';
    const what = parts.length === 0 ? `${plural(count, 'node')} ${verb}` : `${count} ${verb}`;
    parts.push(`${what} ${state.toLowerCase()}`);
  }
  return parts.join(', ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
