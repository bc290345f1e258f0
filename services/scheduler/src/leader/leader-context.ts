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
}
