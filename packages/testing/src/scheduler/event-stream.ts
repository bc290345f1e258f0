import { EventEmitter } from 'node:events';
import type { Client } from '@connectrpc/connect';
import type { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';

/**
 * Follows WatchEvents in the background and keeps every event, so tests can
 * await "the event that says X" instead of sleeping or polling.
 */
export class EventStream {
  readonly events: Event[] = [];
  error: unknown;
  private readonly changes = new EventEmitter();
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(client: Client<typeof AppService>, filter: { app?: string; nodeId?: string; instanceId?: string; afterCursor?: bigint } = {}) {
    this.changes.setMaxListeners(100);
    this.done = (async () => {
      try {
        for await (const { event } of client.watchEvents({ ...filter, follow: true }, { signal: this.abort.signal, timeoutMs: 0 })) {
          if (event === undefined) continue;
          this.events.push(event);
          this.changes.emit('event');
        }
      } catch (error) {
        if (!this.abort.signal.aborted) this.error = error;
      }
      this.changes.emit('event');
    })();
  }

  /** The first event (from index `from` on) matching `predicate`. */
  waitFor(predicate: (event: Event) => boolean, timeoutMs: number, what: string, from = 0): Promise<Event> {
    return new Promise((resolve, reject) => {
      let index = from;
      const check = () => {
        for (; index < this.events.length; index++) {
          const event = this.events[index] as Event;
          if (predicate(event)) {
            cleanup();
            resolve(event);
            return;
          }
        }
        if (this.error !== undefined) {
          cleanup();
          reject(new Error(`event stream failed while waiting for ${what}: ${String(this.error)}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const tail = this.events
          .slice(-15)
          .map((e) => `  ${e.cursor}: ${e.message}`)
          .join('\n');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last events:\n${tail}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.changes.off('event', check);
      };
      this.changes.on('event', check);
      check();
    });
  }

  /** The first non-undefined value of `check`, evaluated now and after every event. */
  until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) {
          cleanup();
          resolve(value);
        } else if (this.error !== undefined) {
          cleanup();
          reject(new Error(`event stream failed while waiting for ${what}: ${String(this.error)}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.changes.off('event', attempt);
      };
      this.changes.on('event', attempt);
      attempt();
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}
