// The active scheduler's in-memory picture of the cluster: a cache of the
// database (which it rebuilds from on takeover) plus the placement index.
import type { ImageConfig, InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { AppSpec, DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import type { RolloutLimits } from '../api/app-spec.js';
import { type NodeState as EngineNodeState, type PendingConstraint, PlacementEngine, type Resources } from '../placement/index.js';
import type { AdminState, CapacityCeiling } from '../store/tables.js';

export interface NodeRecord {
  readonly id: string;
  hostname: string;
  /** The labels placement matches: from the join token, changed only by an admin (SetNodeLabels). */
  joinLabels: Record<string, string>;
  /** What the node says about itself (join request, Hello): shown, never matched. */
  reportedLabels: Record<string, string>;
  /** What placement counts on: the node's report, clamped to its ceiling. */
  capacity: { cpuMillis: number; memoryMib: number; maxInstances: number };
  /** What the node reported in its last Hello (before clamping); after a takeover, what placement counted on. */
  reportedCapacity: { cpuMillis: number; memoryMib: number; maxInstances: number };
  /** The admin's ceiling (join token or SetNodeCapacityCeiling); null: none. */
  capacityCeiling: CapacityCeiling | null;
  adminState: AdminState;
  down: boolean;
  /** Said Hello at least once, so its capacity is known. */
  reported: boolean;
  driver: string;
  joinedAt: Date;
  /** Last sign of life (ms since epoch); kept in memory, persisted lazily as lastHeartbeat. */
  lastSeenMs: number;
  lastHeartbeat: Date | null;
  heartbeatDirty: boolean;
}

export interface VersionRecord {
  readonly version: number;
  readonly spec: AppSpec;
  readonly imageDigest: string;
  /** "sha256:<hex>" of the image's rootfs as the registry recorded it, pinned in registry grants ('' for old versions). */
  readonly rootfsSha256: string;
  readonly imageConfig: ImageConfig;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly limits: RolloutLimits;
  healthyAt: Date | null;
  /** W3C trace context of the DeployApp call that made it, sent with its instances' Assign (memory only). */
  readonly traceContext?: Readonly<Record<string, string>>;
}

export interface DeploymentRecord {
  targetVersion: number;
  fromVersion: number;
  state: DeploymentState;
  healthy: number;
  desired: number;
  reason: string;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface AppRecord {
  readonly name: string;
  createdAt: Date;
  currentVersion: number;
  replicas: number;
  /** Instances wanted per version; the reconciler makes the live instances match. */
  desired: Map<number, number>;
  deployment: DeploymentRecord;
  deletedAt: Date | null;
  readonly versions: Map<number, VersionRecord>;
  /** Why the rollout in progress must fail, set when a new instance fails (memory only). */
  rolloutFailure: string | undefined;
  /** Consecutive failed instances; replacements wait an increasing back-off (memory only). */
  restartFailures: number;
  restartNotBeforeMs: number;
}

export interface InstanceRecord {
  readonly id: string;
  readonly app: string;
  readonly version: number;
  nodeId: string | undefined;
  state: InstanceState;
  reason: string;
  exitCode: number | undefined;
  /** IPv4 address on its node's network as the node last reported it; '' when it has none or has ended. */
  address: string;
  readonly resources: Resources;
  readonly createdAt: Date;
  updatedAt: Date;
  healthySince: Date | undefined;
  /** While PENDING: the constraint placement last found no node passing (for metrics; memory only). */
  pendingConstraint?: PendingConstraint;
}

/** Labels placement sees: only what the join token or an admin set; a node cannot label itself into a placement. */
export function nodeLabels(node: NodeRecord): Record<string, string> {
  return { ...node.joinLabels };
}

export function nodeProtoState(node: Pick<NodeRecord, 'reported' | 'down' | 'adminState'>): NodeState {
  if (!node.reported) return NodeState.UNSPECIFIED;
  if (node.down) return NodeState.DOWN;
  return NodeState[node.adminState];
}

export function engineState(node: NodeRecord): EngineNodeState {
  return node.down ? 'DOWN' : node.adminState;
}

export class ClusterState {
  readonly apps = new Map<string, AppRecord>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly engine = new PlacementEngine();
  /** Non-terminal instances only; terminal ones live in the database. */
  private readonly live = new Map<string, InstanceRecord>();
  private readonly byApp = new Map<string, Set<InstanceRecord>>();
  private readonly byNode = new Map<string, Set<InstanceRecord>>();

  instance(id: string): InstanceRecord | undefined {
    return this.live.get(id);
  }

  liveInstances(): IterableIterator<InstanceRecord> {
    return this.live.values();
  }

  instancesOf(app: string): ReadonlySet<InstanceRecord> {
    return this.byApp.get(app) ?? new Set();
  }

  instancesOn(nodeId: string): ReadonlySet<InstanceRecord> {
    return this.byNode.get(nodeId) ?? new Set();
  }

  addLive(instance: InstanceRecord): void {
    this.live.set(instance.id, instance);
    add(this.byApp, instance.app, instance);
    if (instance.nodeId !== undefined) add(this.byNode, instance.nodeId, instance);
  }

  /** Moves the instance to `nodeId` in the indexes (the caller reserves it in the engine). */
  setNode(instance: InstanceRecord, nodeId: string | undefined): void {
    if (instance.nodeId !== undefined) remove(this.byNode, instance.nodeId, instance);
    instance.nodeId = nodeId;
    if (nodeId !== undefined && this.live.has(instance.id)) add(this.byNode, nodeId, instance);
  }

  /** Forgets a terminal instance and frees what it reserved. */
  removeLive(instance: InstanceRecord): void {
    this.live.delete(instance.id);
    remove(this.byApp, instance.app, instance);
    if (instance.nodeId !== undefined) remove(this.byNode, instance.nodeId, instance);
    this.engine.release(instance.id);
  }
}

function add<V>(index: Map<string, Set<V>>, key: string, value: V): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

function remove<V>(index: Map<string, Set<V>>, key: string, value: V): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}
