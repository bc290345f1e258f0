import type { Logger } from '@shellwego/kit/log';
import type { TokenRefusal } from './join-tokens.js';
import type { SchedulerDb } from './tables.js';

/** One refused join, as the handler saw it. */
export interface RefusedJoin {
  /** The caller's IP address. */
  readonly source: string;
  readonly outcome: TokenRefusal;
  /** Recorded only when the token exists (used, expired): an unknown id is whatever the caller made up. */
  readonly tokenId: string | undefined;
  readonly hostname: string;
}

interface Tally {
  readonly source: string;
  readonly outcome: TokenRefusal;
  readonly tokenId: string | null;
  hostname: string;
  count: number;
  readonly first: Date;
  last: Date;
}

// Rows per interval at most; the rest of an interval's refusals share one row with source "others".
const MAX_ROWS = 50;
const OTHERS = 'others';

/**
 * Refused joins come from callers without a certificate, as many as they like, so each is
 * not a row of its own: they are counted per source address, outcome and (known) token and
 * written to join_attempt as one row per such key per interval, with the count and the time
 * of the first and last, plus one log line. 10,000 refusals in an interval are at most
 * MAX_ROWS + 1 rows. Successful joins are still written one by one, in their transaction.
 */
export class JoinRefusals {
  readonly #pending = new Map<string, Tally>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: SchedulerDb,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  record(refused: RefusedJoin): void {
    const now = new Date();
    const tokenId = refused.outcome === 'used-token' || refused.outcome === 'expired-token' ? (refused.tokenId ?? null) : null;
    let key = `${refused.source}\n${refused.outcome}\n${tokenId ?? ''}`;
    let source = refused.source;
    if (!this.#pending.has(key) && this.#pending.size >= MAX_ROWS) {
      source = OTHERS;
      key = `${OTHERS}\n${refused.outcome}\n`;
    }
    const tally = this.#pending.get(key);
    if (tally === undefined) {
      this.#pending.set(key, {
        source,
        outcome: refused.outcome,
        tokenId: source === OTHERS ? null : tokenId,
        hostname: refused.hostname,
        count: 1,
        first: now,
        last: now,
      });
    } else {
      tally.count++;
      tally.last = now;
      tally.hostname = refused.hostname;
    }
    this.#timer ??= setTimeout(() => void this.flush(), this.intervalMs).unref();
  }

  /** Writes what was counted since the last flush; on shutdown too. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    if (batch.length === 0) return this.#flushing;
    this.#flushing = this.#flushing.then(() => this.#write(batch));
    return this.#flushing;
  }

  async #write(batch: readonly Tally[]): Promise<void> {
    const attempts = batch.map((t) => ({ source: t.source, outcome: t.outcome, tokenId: t.tokenId, hostname: t.hostname, count: t.count }));
    this.logger.warn({ refused: batch.reduce((sum, t) => sum + t.count, 0), since: batch[0]?.first.toISOString(), attempts }, 'join refused');
    try {
      await this.db
        .insertInto('join_attempt')
        .values(
          batch.map((t) => ({
            at: t.first,
            last_at: t.last,
            token_id: t.tokenId,
            outcome: t.outcome,
            node_id: null,
            hostname: t.hostname,
            source: t.source,
            count: t.count,
          })),
        )
        .execute();
    } catch (err) {
      this.logger.error({ err, rows: batch.length }, 'cannot record refused joins in join_attempt');
    }
  }
}
