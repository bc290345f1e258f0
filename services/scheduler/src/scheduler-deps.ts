import type { Logger } from '@shellwego/kit/log';
import type { EventFeed } from './event-feed.js';
import type { ImageResolver } from './image-resolver.js';
import type { JoinTokens } from './join-tokens.js';
import type { Leader } from './leader.js';
import type { Leadership } from './leadership.js';
import type { NodeCertificates } from './node-certificates.js';
import { unavailable } from './rpc-errors.js';
import type { SchedulerDb } from './tables.js';

/** What the RPC handlers of one scheduler process share. */
export interface SchedulerDeps {
  readonly db: SchedulerDb;
  readonly leadership: Leadership;
  readonly feed: EventFeed;
  readonly tokens: JoinTokens;
  readonly certificates: NodeCertificates;
  readonly images: ImageResolver;
  readonly logger: Logger;
  /** Aborted when the process begins to shut down; long streams end on it. */
  readonly shuttingDown: AbortSignal;
}

/** The active scheduler, or UNAVAILABLE naming the active one so the caller can go there. */
export async function requireLeader(deps: SchedulerDeps, what: string): Promise<Leader> {
  const leader = deps.leadership.leader;
  if (leader !== undefined) return leader;
  throw unavailable(`this scheduler is a standby and does not ${what}; ${await deps.leadership.describeActive()}`);
}
