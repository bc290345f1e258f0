/** A node's scheduling state; only READY nodes take new instances. */
export type NodeState = 'READY' | 'CORDONED' | 'DRAINING' | 'DOWN';

/** `binpack` fills the fullest node that fits; `spread` prefers the emptiest. */
export type PlacementStrategy = 'binpack' | 'spread';

/** CPU in thousandths of a vCPU and memory in MiB (structurally a proto `Resources`). */
export interface Resources {
  readonly cpuMillis: number;
  readonly memoryMib: number;
}

/** What a node offers (structurally a proto `Capacity`). */
export interface NodeCapacity extends Resources {
  readonly maxInstances: number;
}

/** A node as the engine is told about it (from Hello, JoinNode or the database). */
export interface NodeSpec {
  readonly id: string;
  readonly state: NodeState;
  readonly labels: Readonly<Record<string, string>>;
  readonly capacity: NodeCapacity;
}

/** One instance to place. */
export interface PlacementRequest {
  readonly instanceId: string;
  readonly app: string;
  readonly resources: Resources;
  /** Labels the chosen node must carry with exactly these values. */
  readonly requiredLabels?: Readonly<Record<string, string>>;
  /** Defaults to `binpack`. */
  readonly strategy?: PlacementStrategy;
}

/** Resources an instance holds on a node. */
export interface Allocation {
  readonly instanceId: string;
  readonly app: string;
  readonly nodeId: string;
  readonly resources: Resources;
}

/**
 * The constraint that kept an instance from being placed, checked in this
 * order (the first one no node passes is reported): no nodes at all, no node
 * with the required labels, none of those READY, none of those with a free
 * instance slot, then resources: `memory` or `cpu` when that one is short on
 * every candidate, `cpu-and-memory` when both are, `fragmentation` when some
 * node has enough CPU and some enough memory but none has both.
 */
export type PendingConstraint = 'no-nodes' | 'labels' | 'node-state' | 'instance-slots' | 'memory' | 'cpu' | 'cpu-and-memory' | 'fragmentation';

/** Why an instance stays PENDING; `reason` is meant for a person. */
export interface Pending {
  readonly constraint: PendingConstraint;
  readonly reason: string;
}

/** Either the chosen node or why there is none. */
export type PlacementResult = { readonly nodeId: string; readonly pending?: undefined } | { readonly nodeId?: undefined; readonly pending: Pending };

/** A read-only, live view of one node's bookkeeping. */
export interface NodeView {
  readonly id: string;
  readonly state: NodeState;
  readonly labels: ReadonlyMap<string, string>;
  readonly capacity: NodeCapacity;
  readonly allocatedCpuMillis: number;
  readonly allocatedMemoryMib: number;
  /** Placed, non-released instances. */
  readonly instanceCount: number;
  /** Instances of `app` on this node. */
  appInstanceCount(app: string): number;
}

/** A detached copy of a node's bookkeeping, safe to keep or serialize. */
export interface NodeSnapshot {
  readonly id: string;
  readonly state: NodeState;
  readonly labels: Readonly<Record<string, string>>;
  readonly capacity: NodeCapacity;
  readonly allocated: Resources;
  readonly instanceCount: number;
  /** Instance count per app, only apps with at least one instance. */
  readonly appInstances: Readonly<Record<string, number>>;
}
