import { PlacementError } from './errors.js';
import { explainPending } from './explain-pending.js';
import { NodeRecord } from './node-record.js';
import { referenceChoose } from './reference-scan.js';
import { DEFAULT_MEMORY_MIB_PER_CPU, freeScore, MAX_MEMORY_MIB_PER_CPU } from './score.js';
import { NO_POSITION, SortedNodeIndex } from './sorted-node-index.js';
import type { Allocation, NodeSnapshot, NodeSpec, NodeState, NodeView, Pending, PlacementRequest, PlacementResult } from './types.js';
import { type CheckedRequest, checkAllocation, checkNodeSpec, checkNodeState, checkRequest } from './validate.js';

export interface PlacementEngineOptions {
  /** MiB of memory that weigh as much as one vCPU in the free score (see score.ts). */
  readonly memoryMibPerCpu?: number;
}

/** Counters for judging how much work placement does. */
export interface PlacementStats {
  /** choose() and place() calls that ran a search. */
  readonly decisions: number;
  /** Nodes looked at by those searches (the pending explanation not included). */
  readonly nodesExamined: number;
}

/**
 * A label posting list this many times smaller than the set of schedulable
 * nodes is scanned directly instead of walking the score index.
 */
const LABEL_SCAN_FACTOR = 8;

/**
 * The scheduler's in-memory placement engine: node bookkeeping plus the
 * placement rules of referenceChoose, answered from an index.
 *
 * Schedulable nodes (READY with a free instance slot) sit in one index sorted
 * by (free score, id). Because the score order does not depend on the request
 * (score.ts), the best node is the first one in index order, ascending for
 * binpack and descending for spread, that has the CPU and memory, the labels
 * and no replica of the app. A binary search skips every node whose score is
 * too low to fit at all, and the index skips whole blocks of nodes short of
 * CPU or of memory. Only when no node without a replica fits are the nodes
 * holding the app (app -> nodes map) compared by replica count. A required
 * label held by few nodes is served from its posting list instead.
 *
 * Synchronous by design: place() reserves in the same call that chooses, so
 * two placements on the event loop never both count on the same free room.
 */
export class PlacementEngine {
  private readonly memoryMibPerCpu: number;
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly index = new SortedNodeIndex();
  private readonly instances = new Map<string, Allocation>();
  private readonly appNodes = new Map<string, Set<NodeRecord>>();
  /** label key -> label value -> nodes carrying it, whatever their state. */
  private readonly labelNodes = new Map<string, Map<string, Set<NodeRecord>>>();
  private decisions = 0;
  /** Nodes compared one by one outside the index (posting lists, replica holders). */
  private nodesScanned = 0;
  /**
   * Pending reasons by request shape (resources and labels; the app and
   * instance do not change the reason), valid until the cluster changes: a
   * sweep retrying many pending instances pays for one explanation per shape.
   */
  private readonly explained = new Map<string, Pending>();

  constructor(options: PlacementEngineOptions = {}) {
    const rate = options.memoryMibPerCpu ?? DEFAULT_MEMORY_MIB_PER_CPU;
    if (!Number.isInteger(rate) || rate < 1 || rate > MAX_MEMORY_MIB_PER_CPU) {
      throw new PlacementError('invalid-argument', `memoryMibPerCpu must be an integer from 1 to ${MAX_MEMORY_MIB_PER_CPU}, got ${String(rate)}`);
    }
    this.memoryMibPerCpu = rate;
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  get instanceCount(): number {
    return this.instances.size;
  }

  /** Adds a node or replaces its state, labels and capacity; its allocations stay. */
  upsertNode(spec: NodeSpec): NodeSnapshot {
    const checked = checkNodeSpec(spec);
    this.forgetExplanations();
    let node = this.nodes.get(checked.id);
    if (node === undefined) {
      node = new NodeRecord(checked);
      this.nodes.set(node.id, node);
    } else {
      this.unpostLabels(node);
      node.state = checked.state;
      node.labels = new Map(Object.entries(checked.labels));
      node.capacity = checked.capacity;
    }
    this.postLabels(node);
    this.refile(node);
    return node.snapshot();
  }

  /** Cordon, drain, mark down or back to READY. Throws not-found for an unknown node. */
  setNodeState(nodeId: string, state: NodeState): NodeSnapshot {
    const node = this.requireNode(nodeId);
    node.state = checkNodeState(state, 'state');
    this.forgetExplanations();
    this.refile(node);
    return node.snapshot();
  }

  /**
   * Forgets a node and every allocation on it; returns those allocations so
   * the caller can mark the instances LOST and place them again.
   */
  removeNode(nodeId: string): Allocation[] {
    const node = this.requireNode(nodeId);
    this.forgetExplanations();
    if (node.indexed) this.index.remove(node);
    this.unpostLabels(node);
    for (const app of node.apps.keys()) this.dropHolder(app, node);
    const dropped = [...node.allocations.values()];
    for (const allocation of dropped) this.instances.delete(allocation.instanceId);
    this.nodes.delete(nodeId);
    return dropped;
  }

  getNode(nodeId: string): NodeSnapshot | undefined {
    return this.nodes.get(nodeId)?.snapshot();
  }

  /** Every node, sorted by id. */
  listNodes(): NodeSnapshot[] {
    return [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((node) => node.snapshot());
  }

  /** Live read-only views of every node (no copies; do not hold them across changes). */
  nodeViews(): IterableIterator<NodeView> {
    return this.nodes.values();
  }

  /** Picks a node for `request` without reserving anything. */
  choose(request: PlacementRequest): PlacementResult {
    const checked = checkRequest(request);
    const node = this.select(checked);
    return node === undefined ? { pending: this.explain(checked, request) } : { nodeId: node.id };
  }

  /**
   * Picks a node and reserves the request's resources on it in the same call.
   * Throws already-exists when the instance holds an allocation (release it
   * first to move it).
   */
  place(request: PlacementRequest): PlacementResult {
    const checked = checkRequest(request);
    if (this.instances.has(checked.instanceId)) {
      throw new PlacementError('already-exists', `instance ${checked.instanceId} is already placed`);
    }
    const node = this.select(checked);
    if (node === undefined) return { pending: this.explain(checked, request) };
    this.commit(node, {
      instanceId: checked.instanceId,
      app: checked.app,
      nodeId: node.id,
      resources: { cpuMillis: checked.cpuMillis, memoryMib: checked.memoryMib },
    });
    return { nodeId: node.id };
  }

  /**
   * Records an allocation that exists already (loaded from the database or
   * reported by a node in Hello) without checking that it fits: reality wins,
   * even when it overcommits the node. Throws not-found for an unknown node
   * and already-exists for an instance that is placed.
   */
  assign(allocation: Allocation): void {
    const checked = checkAllocation(allocation);
    const node = this.requireNode(checked.nodeId);
    if (this.instances.has(checked.instanceId)) {
      throw new PlacementError('already-exists', `instance ${checked.instanceId} is already placed`);
    }
    this.commit(node, checked);
  }

  /** Frees an instance's reservation; returns it, or undefined if it held none. */
  release(instanceId: string): Allocation | undefined {
    const allocation = this.instances.get(instanceId);
    if (allocation === undefined) return undefined;
    const node = this.nodes.get(allocation.nodeId) as NodeRecord;
    this.forgetExplanations();
    this.instances.delete(instanceId);
    node.allocations.delete(instanceId);
    node.allocatedCpuMillis -= allocation.resources.cpuMillis;
    node.allocatedMemoryMib -= allocation.resources.memoryMib;
    node.instanceCount--;
    const left = (node.apps.get(allocation.app) ?? 0) - 1;
    if (left > 0) {
      node.apps.set(allocation.app, left);
    } else {
      node.apps.delete(allocation.app);
      this.dropHolder(allocation.app, node);
    }
    this.refile(node);
    return allocation;
  }

  getAllocation(instanceId: string): Allocation | undefined {
    return this.instances.get(instanceId);
  }

  allocationsOn(nodeId: string): Allocation[] {
    return [...this.requireNode(nodeId).allocations.values()];
  }

  stats(): PlacementStats {
    return { decisions: this.decisions, nodesExamined: this.nodesScanned + this.index.examined };
  }

  private select(request: CheckedRequest): NodeRecord | undefined {
    this.decisions++;
    if (request.labels.length > 0) {
      let fewest: Set<NodeRecord> | undefined;
      for (const [key, value] of request.labels) {
        const holders = this.labelNodes.get(key)?.get(value);
        if (holders === undefined) return undefined;
        if (fewest === undefined || holders.size < fewest.size) fewest = holders;
      }
      if (fewest !== undefined && fewest.size * LABEL_SCAN_FACTOR <= this.index.size) {
        return this.scanSet(fewest, request);
      }
    }
    const threshold = freeScore(request.cpuMillis, request.memoryMib, this.memoryMibPerCpu);
    const apart = request.strategy === 'spread' ? this.spreadApart(request, threshold) : this.binpackApart(request, threshold);
    if (apart !== undefined) return apart;
    // Every feasible node, if any, already runs a replica: fall back to comparing those.
    const holders = this.appNodes.get(request.app);
    return holders === undefined ? undefined : this.scanSet(holders, request);
  }

  private forgetExplanations(): void {
    // Clearing an empty Map still allocates in V8; this runs on every placement.
    if (this.explained.size > 0) this.explained.clear();
  }

  private explain(checked: CheckedRequest, request: PlacementRequest): Pending {
    const shape = JSON.stringify([checked.cpuMillis, checked.memoryMib, checked.labels]);
    let pending = this.explained.get(shape);
    if (pending === undefined) {
      pending = explainPending(this.nodes.values(), request);
      this.explained.set(shape, pending);
    }
    return pending;
  }

  /** The lowest-score node without a replica that fits; nodes below `threshold` cannot fit. */
  private binpackApart(request: CheckedRequest, threshold: number): NodeRecord | undefined {
    const index = this.index;
    const last = index.lastPosition();
    let position = index.lowerBound(threshold);
    while (position !== NO_POSITION) {
      position = index.nextWithRoom(position, last, request.cpuMillis, request.memoryMib);
      if (position === NO_POSITION) return undefined;
      const node = index.at(position);
      if (this.suitsApart(node, request)) return node;
      position = index.after(position);
    }
    return undefined;
  }

  /**
   * The highest-score node without a replica that fits. The index holds equal
   * scores in ascending id order, so each run of equal scores is walked
   * forward from its start to honour the smallest-id tie-break.
   */
  private spreadApart(request: CheckedRequest, threshold: number): NodeRecord | undefined {
    const index = this.index;
    const floor = index.lowerBound(threshold);
    let last = index.lastPosition();
    while (floor !== NO_POSITION && last !== NO_POSITION && last >= floor) {
      const top = index.previousWithRoom(last, floor, request.cpuMillis, request.memoryMib);
      if (top === NO_POSITION) return undefined;
      const key = index.at(top).key;
      const previous = index.before(top);
      // key >= threshold, so the run's start is never below the floor.
      const first = previous !== NO_POSITION && index.at(previous).key === key ? index.lowerBound(key) : top;
      let position = first;
      while (position !== NO_POSITION) {
        position = index.nextWithRoom(position, top, request.cpuMillis, request.memoryMib);
        if (position === NO_POSITION) break;
        const node = index.at(position);
        if (this.suitsApart(node, request)) return node;
        position = index.after(position);
      }
      last = index.before(first);
    }
    return undefined;
  }

  /** For an indexed node with room: the labels, and no replica of the app. */
  private suitsApart(node: NodeRecord, request: CheckedRequest): boolean {
    if (node.apps.has(request.app)) return false;
    for (const [key, value] of request.labels) {
      if (node.labels.get(key) !== value) return false;
    }
    return true;
  }

  /** The full rules over a set known to contain every node that could be chosen. */
  private scanSet(nodes: Set<NodeRecord>, request: CheckedRequest): NodeRecord | undefined {
    this.nodesScanned += nodes.size;
    return referenceChoose(
      nodes,
      {
        instanceId: request.instanceId,
        app: request.app,
        resources: { cpuMillis: request.cpuMillis, memoryMib: request.memoryMib },
        requiredLabels: Object.fromEntries(request.labels),
        strategy: request.strategy,
      },
      this.memoryMibPerCpu,
    );
  }

  private commit(node: NodeRecord, allocation: Allocation): void {
    this.forgetExplanations();
    node.allocations.set(allocation.instanceId, allocation);
    node.allocatedCpuMillis += allocation.resources.cpuMillis;
    node.allocatedMemoryMib += allocation.resources.memoryMib;
    node.instanceCount++;
    node.apps.set(allocation.app, (node.apps.get(allocation.app) ?? 0) + 1);
    let holders = this.appNodes.get(allocation.app);
    if (holders === undefined) {
      holders = new Set();
      this.appNodes.set(allocation.app, holders);
    }
    holders.add(node);
    this.instances.set(allocation.instanceId, allocation);
    this.refile(node);
  }

  /** Puts the node where its state, slots and free resources say it belongs in the index. */
  private refile(node: NodeRecord): void {
    if (!node.schedulable) {
      if (node.indexed) this.index.remove(node);
      return;
    }
    const key = freeScore(node.freeCpuMillis, node.freeMemoryMib, this.memoryMibPerCpu);
    if (node.indexed) this.index.update(node, key);
    else this.index.insert(node, key);
  }

  private dropHolder(app: string, node: NodeRecord): void {
    const holders = this.appNodes.get(app);
    if (holders === undefined) return;
    holders.delete(node);
    if (holders.size === 0) this.appNodes.delete(app);
  }

  private postLabels(node: NodeRecord): void {
    for (const [key, value] of node.labels) {
      let values = this.labelNodes.get(key);
      if (values === undefined) {
        values = new Map();
        this.labelNodes.set(key, values);
      }
      let holders = values.get(value);
      if (holders === undefined) {
        holders = new Set();
        values.set(value, holders);
      }
      holders.add(node);
    }
  }

  private unpostLabels(node: NodeRecord): void {
    for (const [key, value] of node.labels) {
      const values = this.labelNodes.get(key);
      const holders = values?.get(value);
      if (values === undefined || holders === undefined) continue;
      holders.delete(node);
      if (holders.size === 0) values.delete(value);
      if (values.size === 0) this.labelNodes.delete(key);
    }
  }

  private requireNode(nodeId: string): NodeRecord {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new PlacementError('not-found', `node ${nodeId} is not known to the scheduler`);
    return node;
  }
}
