import type { Logger } from '@shellwego/kit/log';
import type { SchedulerMetrics } from '../metrics/scheduler-metrics.js';
import type { ClusterState } from './cluster-state.js';
import type { GrantIssuer } from './grant-issuer.js';

/** What the active scheduler's decision code works with. */
export interface LeaderContext {
  readonly state: ClusterState;
  readonly grants: GrantIssuer;
  readonly logger: Logger;
  readonly stopGraceMs: number;
  /** Heartbeat interval plus grace: silence longer than this makes a node DOWN. */
  readonly heartbeatDeadlineMs: number;
  readonly metrics: SchedulerMetrics;
  /** An Assign whose grant could not be issued: fails the instance (in a unit of work of its own) with the reason. */
  readonly failUnsentAssignment: (instanceId: string, nodeId: string, reason: string) => void;
}
