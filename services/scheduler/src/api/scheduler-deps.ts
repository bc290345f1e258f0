import { unavailable } from '@shellwego/kit/errors';
import type { Logger } from '@shellwego/kit/log';
import type { ImageResolver } from '../leader/image-resolver.js';
import type { Leader } from '../leader/leader.js';
import type { Leadership } from '../leader/leadership.js';
import type { EventFeed } from '../store/event-feed.js';
import type { JoinRefusals } from '../store/join-refusals.js';
import type { JoinTokens } from '../store/join-tokens.js';
import type { NodeCertificateLedger } from '../store/node-certificate-ledger.js';
import type { NodeCertificates } from '../store/node-certificates.js';
import type { NodeSubnets } from '../store/node-subnets.js';
import type { SchedulerDb } from '../store/tables.js';

/** What the RPC handlers of one scheduler process share. */
export interface SchedulerDeps {
  readonly db: SchedulerDb;
  readonly leadership: Leadership;
  readonly feed: EventFeed;
  readonly tokens: JoinTokens;
  readonly joinRefusals: JoinRefusals;
  readonly certificates: NodeCertificates;
  readonly ledger: NodeCertificateLedger;
  readonly subnets: NodeSubnets;
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
