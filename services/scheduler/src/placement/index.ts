// The placement engine's public surface for the rest of the scheduler.

export { PlacementError, type PlacementErrorCode } from './errors.js';
export { explainPending } from './explain-pending.js';
export { PlacementEngine, type PlacementEngineOptions, type PlacementStats } from './placement-engine.js';
export { nodeStateFromProto, nodeStateToProto, strategyFromProto } from './proto-mapping.js';
export { referenceChoose } from './reference-scan.js';
export { DEFAULT_MEMORY_MIB_PER_CPU, freeScore } from './score.js';
export type {
  Allocation,
  NodeCapacity,
  NodeSnapshot,
  NodeSpec,
  NodeState,
  NodeView,
  Pending,
  PendingConstraint,
  PlacementRequest,
  PlacementResult,
  PlacementStrategy,
  Resources,
} from './types.js';
