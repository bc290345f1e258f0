import { sql } from 'kysely';
import type { SchedulerDb, SchedulerTx } from './tables.js';

/** Advisory lock keys of the scheduler (two-int form; the first names the scheduler). */
export const LOCK_CLASS = 0x7377_6773;
export const LEADER_LOCK = 1;
const EVENT_ORDER_LOCK = 2;

/** The channel a commit that appended events notifies, so standbys can stream them at once. */
export const EVENTS_CHANNEL = 'shellwego_scheduler_events';

/**
 * Runs `work` in a transaction that may append events. Every such
 * transaction first takes one transaction-scoped advisory lock, so they
 * commit one after the other and event cursors become visible in cursor
 * order: a reader that has seen cursor N will never later find a smaller one
 * (which is what lets WatchEvents promise no gaps).
 */
export async function writeTransaction<T>(db: SchedulerDb, dialect: 'postgres' | 'pglite', work: (trx: SchedulerTx) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${EVENT_ORDER_LOCK})`.execute(trx);
    const result = await work(trx);
    // Delivered at commit; PGlite runs in one process, which wakes its own feed.
    if (dialect === 'postgres') await sql`SELECT pg_notify(${EVENTS_CHANNEL}, '')`.execute(trx);
    return result;
  });
}
