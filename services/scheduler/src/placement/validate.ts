import { PlacementError } from './errors.js';
import type { Allocation, NodeSpec, NodeState, PlacementRequest, PlacementStrategy, Resources } from './types.js';

const MAX_UINT32 = 0xffff_ffff;
const NODE_STATES: ReadonlySet<string> = new Set<NodeState>(['READY', 'CORDONED', 'DRAINING', 'DOWN']);
const STRATEGIES: ReadonlySet<string> = new Set<PlacementStrategy>(['binpack', 'spread']);

/** A request after validation, in the form the placement loops read fastest. */
export interface CheckedRequest {
  readonly instanceId: string;
  readonly app: string;
  readonly cpuMillis: number;
  readonly memoryMib: number;
  /** Sorted by label key, so messages list them in a stable order. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  readonly strategy: PlacementStrategy;
}

function invalid(message: string): PlacementError {
  return new PlacementError('invalid-argument', message);
}

function checkId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(`${field} must be a non-empty string`);
  }
  return value;
}

function checkUint32(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_UINT32) {
    const range = min === 0 ? 'a non-negative integer' : 'a positive integer';
    throw invalid(`${field} must be ${range} no larger than ${MAX_UINT32}, got ${String(value)}`);
  }
  return value;
}

/** Checks that both resources are positive uint32 values. */
export function checkResources(resources: Resources | undefined, field: string): Resources {
  if (resources === undefined || resources === null || typeof resources !== 'object') {
    throw invalid(`${field} is required`);
  }
  return {
    cpuMillis: checkUint32(resources.cpuMillis, `${field}.cpuMillis`, 1),
    memoryMib: checkUint32(resources.memoryMib, `${field}.memoryMib`, 1),
  };
}

function checkLabels(labels: Readonly<Record<string, string>> | undefined, field: string): Array<[string, string]> {
  if (labels === undefined) return [];
  if (labels === null || typeof labels !== 'object') throw invalid(`${field} must be a map of strings`);
  const entries = Object.entries(labels);
  for (const [key, value] of entries) {
    if (key.length === 0) throw invalid(`${field} has an empty label key`);
    if (typeof value !== 'string') throw invalid(`${field}.${key} must be a string`);
  }
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function checkRequest(request: PlacementRequest): CheckedRequest {
  const strategy = request.strategy ?? 'binpack';
  if (!STRATEGIES.has(strategy)) {
    throw invalid(`strategy must be "binpack" or "spread", got ${JSON.stringify(strategy)}`);
  }
  const resources = checkResources(request.resources, 'resources');
  return {
    instanceId: checkId(request.instanceId, 'instanceId'),
    app: checkId(request.app, 'app'),
    cpuMillis: resources.cpuMillis,
    memoryMib: resources.memoryMib,
    labels: checkLabels(request.requiredLabels, 'requiredLabels'),
    strategy,
  };
}

export function checkNodeState(state: unknown, field: string): NodeState {
  if (typeof state !== 'string' || !NODE_STATES.has(state)) {
    throw invalid(`${field} must be one of READY, CORDONED, DRAINING, DOWN, got ${JSON.stringify(state)}`);
  }
  return state as NodeState;
}

export function checkNodeSpec(spec: NodeSpec): NodeSpec {
  const id = checkId(spec.id, 'node.id');
  const capacity = spec.capacity;
  if (capacity === undefined || capacity === null || typeof capacity !== 'object') {
    throw invalid(`node ${id}: capacity is required`);
  }
  return {
    id,
    state: checkNodeState(spec.state, `node ${id}: state`),
    labels: Object.fromEntries(checkLabels(spec.labels, `node ${id}: labels`)),
    capacity: {
      cpuMillis: checkUint32(capacity.cpuMillis, `node ${id}: capacity.cpuMillis`, 0),
      memoryMib: checkUint32(capacity.memoryMib, `node ${id}: capacity.memoryMib`, 0),
      maxInstances: checkUint32(capacity.maxInstances, `node ${id}: capacity.maxInstances`, 0),
    },
  };
}

export function checkAllocation(allocation: Allocation): Allocation {
  return {
    instanceId: checkId(allocation.instanceId, 'instanceId'),
    app: checkId(allocation.app, 'app'),
    nodeId: checkId(allocation.nodeId, 'nodeId'),
    resources: checkResources(allocation.resources, 'resources'),
  };
}
