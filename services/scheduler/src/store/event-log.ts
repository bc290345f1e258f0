import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type Event, EventSchema } from '@shellwego/contracts/scheduler/v1/events_pb';
import { asSqlBigint } from '@shellwego/kit/db';
import { sql } from 'kysely';
import type { EventDraft } from './event-drafts.js';
import type { SchedulerDb, SchedulerTx } from './tables.js';

/** Which events a reader wants; an empty field matches every event. */
export interface EventFilter {
  readonly app: string;
  readonly nodeId: string;
  readonly instanceId: string;
}

export const NO_FILTER: EventFilter = { app: '', nodeId: '', instanceId: '' };

const INSERT_CHUNK = 5_000;

/**
 * Appends events; call only inside writeTransaction, which keeps commit order
 * equal to cursor order. One array parameter per column (unnest) keeps a
 * batch of thousands one short statement; unnest preserves the order, so
 * cursors follow the order of `drafts`.
 */
export async function appendEvents(trx: SchedulerTx, drafts: readonly EventDraft[]): Promise<void> {
  for (let start = 0; start < drafts.length; start += INSERT_CHUNK) {
    const chunk = drafts.slice(start, start + INSERT_CHUNK);
    await sql`INSERT INTO event (time, app, node_id, instance_id, message, detail)
      SELECT e.time, e.app, e.node_id, e.instance_id, e.message, e.detail FROM unnest(
        ${chunk.map((d) => d.time)}::timestamptz[], ${chunk.map((d) => d.app)}::text[], ${chunk.map((d) => d.nodeId)}::text[],
        ${chunk.map((d) => d.instanceId)}::text[], ${chunk.map((d) => d.message)}::text[],
        ${chunk.map((d) => Buffer.from(toBinary(EventSchema, create(EventSchema, { detail: d.detail }))))}::bytea[])
      WITH ORDINALITY AS e(time, app, node_id, instance_id, message, detail, n) ORDER BY e.n`.execute(trx);
  }
}

/** Up to `limit` stored events after `afterCursor` that pass the filter, in cursor order. */
export async function readEvents(db: SchedulerDb, filter: EventFilter, afterCursor: bigint, limit: number): Promise<Event[]> {
  let query = db.selectFrom('event').selectAll().where('cursor', '>', asSqlBigint(afterCursor));
  if (filter.app !== '') query = query.where('app', '=', filter.app);
  if (filter.nodeId !== '') query = query.where('node_id', '=', filter.nodeId);
  if (filter.instanceId !== '') query = query.where('instance_id', '=', filter.instanceId);
  const rows = await query.orderBy('cursor').limit(limit).execute();
  return rows.map((row) => {
    const event = fromBinary(EventSchema, row.detail);
    event.cursor = row.cursor;
    event.time = timestampFromDate(row.time);
    event.app = row.app;
    event.nodeId = row.node_id;
    event.instanceId = row.instance_id;
    event.message = row.message;
    return event;
  });
}

export function matchesFilter(event: Event, filter: EventFilter): boolean {
  return (
    (filter.app === '' || event.app === filter.app) &&
    (filter.nodeId === '' || event.nodeId === filter.nodeId) &&
    (filter.instanceId === '' || event.instanceId === filter.instanceId)
  );
}
