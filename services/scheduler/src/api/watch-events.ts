import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import { resourceExhausted } from '@shellwego/kit/errors';
import type { EventFeed } from '../store/event-feed.js';
import { type EventFilter, matchesFilter, readEvents } from '../store/event-log.js';
import type { SchedulerDb } from '../store/tables.js';

const PAGE = 500;
/** Live events held for one watcher that reads slower than they arrive. */
const MAX_BUFFERED = 20_000;

/**
 * Stored events after `afterCursor`, then (with `follow`) live ones, with no
 * gap and no duplicate: the live feed is subscribed to before the backlog is
 * read, and anything at or below the last cursor sent is dropped.
 */
export async function* watchEvents(
  db: SchedulerDb,
  feed: EventFeed,
  filter: EventFilter,
  afterCursor: bigint,
  follow: boolean,
  signal: AbortSignal,
): AsyncGenerator<Event> {
  const buffered: Event[] = [];
  let wakeUp: (() => void) | undefined;
  const unsubscribe = follow
    ? feed.subscribe((event) => {
        if (!matchesFilter(event, filter)) return;
        buffered.push(event);
        wakeUp?.();
      })
    : () => undefined;
  const onAbort = () => wakeUp?.();
  signal.addEventListener('abort', onAbort);
  try {
    let last = afterCursor;
    for (;;) {
      const page = await readEvents(db, filter, last, PAGE);
      for (const event of page) {
        yield event;
        last = event.cursor;
      }
      if (page.length < PAGE) break;
    }
    if (!follow) return;
    let next = 0;
    while (!signal.aborted) {
      if (buffered.length - next > MAX_BUFFERED) {
        throw resourceExhausted(`this watcher fell more than ${MAX_BUFFERED} events behind; watch again with after_cursor ${last} to resume`);
      }
      if (next < buffered.length) {
        const event = buffered[next++] as Event;
        if (next > 1_000) {
          buffered.splice(0, next);
          next = 0;
        }
        if (event.cursor <= last) continue;
        yield event;
        last = event.cursor;
        continue;
      }
      await new Promise<void>((resolve) => {
        wakeUp = resolve;
      });
      wakeUp = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
  }
}
