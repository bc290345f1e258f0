import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import type { Logger } from '@shellwego/kit/log';
import { sql } from 'kysely';
import { NO_FILTER, readEvents } from './event-log.js';
import type { SchedulerDb } from './tables.js';

const PAGE = 1_000;

/**
 * The live tail of the event log, for WatchEvents. It reads committed events
 * from the database in cursor order whenever it is woken (a local commit, a
 * Postgres notification from the active scheduler, or a slow safety poll) and
 * hands each to every subscriber, so a standby streams exactly what the
 * leader stored, in order, with nothing skipped.
 */
export class EventFeed {
  private lastCursor = 0n;
  private reading: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly subscribers = new Set<(event: Event) => void>();
  /** Counts subscriptions, so a drain can tell that one began while it ran. */
  private subscriptions = 0;

  constructor(
    private readonly db: SchedulerDb,
    private readonly logger: Logger,
    private readonly pollMs: number,
  ) {}

  async start(): Promise<void> {
    this.lastCursor = await this.maxCursor();
    this.timer = setInterval(() => this.wake(), this.pollMs);
    this.timer.unref();
  }

  /** Reads whatever was committed since the last read; coalesces concurrent wake-ups. */
  wake(): void {
    if (this.reading !== undefined) {
      this.again = true;
      return;
    }
    this.reading = this.drain().finally(() => {
      this.reading = undefined;
    });
  }

  /** Calls `listener` with every event committed after this call, in cursor order. */
  subscribe(listener: (event: Event) => void): () => void {
    this.subscriptions++;
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  close(): void {
    clearInterval(this.timer);
    this.subscribers.clear();
  }

  private async maxCursor(): Promise<bigint> {
    const row = await sql<{ last: bigint | null }>`SELECT max(cursor) AS last FROM event`.execute(this.db);
    return row.rows[0]?.last ?? 0n;
  }

  private async drain(): Promise<void> {
    try {
      do {
        this.again = false;
        if (this.subscribers.size === 0) {
          // Nobody listens: skip the rows. Only if nobody subscribed meanwhile, as that
          // subscriber may have read its backlog before the rows this skips were committed.
          const before = this.subscriptions;
          const last = await this.maxCursor();
          if (this.subscriptions === before) {
            this.lastCursor = last;
            continue;
          }
        }
        for (;;) {
          const events = await readEvents(this.db, NO_FILTER, this.lastCursor, PAGE);
          for (const event of events) {
            this.lastCursor = event.cursor;
            for (const subscriber of this.subscribers) subscriber(event);
          }
          if (events.length < PAGE) break;
        }
      } while (this.again);
    } catch (error) {
      // The next wake-up or poll retries from the same cursor.
      this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'reading new events failed');
    }
  }
}
