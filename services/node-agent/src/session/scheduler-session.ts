// The node's live Session with the active scheduler: Hello (capacity, labels, what runs here),
// heartbeats, and every instance event; assignments, stop orders and secret refreshes come back.
// It reconnects with back-off; when a scheduler is a standby (UNAVAILABLE) or its connection
// fails (refused, or reset because the process died), the next scheduler URL is tried at once,
// and one round over every URL counts as one failure for the back-off. Events raised while no stream is open, and those written shortly before a stream
// failed, go on the next one, except the non-terminal ones of instances the new Hello already
// reports in their current state. A terminal event may so arrive twice; the scheduler ignores
// the second.

import { setTimeout as sleep } from 'node:timers/promises';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { type Client, Code, ConnectError } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type {
  HeartbeatSchema,
  HelloSchema,
  InstanceEventSchema,
  NodeService,
  SessionRequestSchema,
  SessionResponse,
} from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { PushQueue } from '@shellwego/kit/async';
import type { Logger } from '@shellwego/kit/log';
import { isConnectionFailure } from '@shellwego/kit/rpc';

export type HelloInit = MessageInitShape<typeof HelloSchema> & { running: { instanceId: string; state: InstanceState }[] };
export type HeartbeatInit = MessageInitShape<typeof HeartbeatSchema>;
export type InstanceEventInit = MessageInitShape<typeof InstanceEventSchema> & { instanceId: string; state: InstanceState };
type SessionRequestInit = MessageInitShape<typeof SessionRequestSchema>;

export interface SessionCallbacks {
  /** Built when a stream opens, so it reports what runs at that moment. */
  hello(): HelloInit;
  heartbeat(): HeartbeatInit;
  onMessage(message: SessionResponse): void;
}

export interface SchedulerSessionOptions {
  readonly urls: readonly string[];
  readonly client: (url: string) => Client<typeof NodeService>;
  readonly heartbeatIntervalMs: number;
  readonly log: Logger;
  readonly callbacks: SessionCallbacks;
  /** First reconnect delay; doubles up to maxBackoffMs. Default 250 ms. */
  readonly initialBackoffMs?: number;
  /** Default 10 s. */
  readonly maxBackoffMs?: number;
}

// A stream that stayed open this long counts as a success: the back-off starts over.
const STABLE_SESSION_MS = 10_000;
// A stream that lasted this long, or carried a message, was accepted: when it ends, the next
// URL is tried at once (the scheduler may have handed leadership over).
const ESTABLISHED_SESSION_MS = 1_000;
// Hopping from a standby to the next URL needs no back-off.
const NEXT_URL_DELAY_MS = 50;
// Events waiting for a stream beyond this are dropped oldest first (the next Hello still
// reports every live instance).
const MAX_PENDING_EVENTS = 10_000;
// Events written this shortly before a stream failed are sent again on the next one: an item
// written to a stream that then failed may never have been processed (a standby reads nothing; an
// active scheduler that steps down may not have committed it).
const RESEND_WINDOW_MS = 10_000;
const TERMINAL = new Set([InstanceState.STOPPED, InstanceState.FAILED]);

export class SchedulerSession {
  private pending: InstanceEventInit[] = [];
  private queue: PushQueue<SessionRequestInit> | undefined;
  private abort: AbortController | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private url: string | undefined;

  constructor(private readonly options: SchedulerSessionOptions) {}

  /** The scheduler URL of the open stream, if any. */
  get connectedUrl(): string | undefined {
    return this.url;
  }

  get connected(): boolean {
    return this.url !== undefined;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.abort?.abort();
    await this.loop;
  }

  /** Sends an instance event now, or on the next stream. */
  report(event: InstanceEventInit): void {
    if (this.queue?.push({ msg: { case: 'instanceEvent', value: event } }) === true) return;
    this.pending.push(event);
    if (this.pending.length > MAX_PENDING_EVENTS) this.pending.splice(0, this.pending.length - MAX_PENDING_EVENTS);
  }

  private async run(): Promise<void> {
    const { urls, log } = this.options;
    let attempt = 0;
    let failures = 0;
    // Schedulers in a row that were a standby or unreachable: a round over every URL without
    // an active one costs one back-off step.
    let unreachableInRow = 0;
    while (!this.stopping.signal.aborted) {
      const url = urls[attempt % urls.length] as string;
      const abort = new AbortController();
      this.abort = abort;
      const queue = this.openQueue();
      const heartbeat = setInterval(
        () => queue.push({ msg: { case: 'heartbeat', value: this.options.callbacks.heartbeat() } }),
        this.options.heartbeatIntervalMs,
      );
      const openedAt = Date.now();
      this.url = url;
      let error: ConnectError | undefined;
      let received = 0;
      try {
        log.info({ scheduler: url }, 'opening the scheduler session');
        for await (const message of this.options.client(url).session(queue, { signal: abort.signal, timeoutMs: 0 })) {
          received += 1;
          this.options.callbacks.onMessage(message);
        }
      } catch (caught) {
        error = ConnectError.from(caught);
      } finally {
        clearInterval(heartbeat);
        this.url = undefined;
        this.queue = undefined;
        this.requeue(queue.reclaim());
      }
      if (this.stopping.signal.aborted) break;
      const lasted = Date.now() - openedAt;
      if (lasted >= STABLE_SESSION_MS) failures = 0;
      if (received > 0 || lasted >= ESTABLISHED_SESSION_MS) unreachableInRow = 0;
      attempt += 1;
      const unreachable = error !== undefined && (error.code === Code.Unavailable || isConnectionFailure(error));
      unreachableInRow = unreachable ? unreachableInRow + 1 : 0;
      const nextUrl = unreachable && unreachableInRow % urls.length !== 0;
      if (!nextUrl) failures += 1;
      const delay = nextUrl ? NEXT_URL_DELAY_MS : this.backoffMs(failures);
      this.logEnd(url, error, delay);
      await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }

  /**
   * A new stream's queue: Hello first, then what waited, minus what is stale: the Hello reports
   * the current state of what runs, and an ended instance's last word is its terminal event.
   */
  private openQueue(): PushQueue<SessionRequestInit> {
    const queue = new PushQueue<SessionRequestInit>({ retainTakenMs: RESEND_WINDOW_MS });
    const hello = this.options.callbacks.hello();
    queue.push({ msg: { case: 'hello', value: hello } });
    const waiting = this.pending;
    this.pending = [];
    const superseded = new Set([...hello.running.map((r) => r.instanceId), ...waiting.filter((e) => TERMINAL.has(e.state)).map((e) => e.instanceId)]);
    for (const event of waiting) {
      if (TERMINAL.has(event.state) || !superseded.has(event.instanceId)) queue.push({ msg: { case: 'instanceEvent', value: event } });
    }
    this.queue = queue;
    return queue;
  }

  private requeue(unsent: SessionRequestInit[]): void {
    const events = unsent.flatMap((request) => (request.msg?.case === 'instanceEvent' ? [request.msg.value as InstanceEventInit] : []));
    this.pending = [...events, ...this.pending];
  }

  private backoffMs(failures: number): number {
    const initial = this.options.initialBackoffMs ?? 250;
    const max = this.options.maxBackoffMs ?? 10_000;
    const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 20));
    // Jitter keeps a fleet of agents from reconnecting in lockstep after a scheduler restart.
    return Math.round(base * (0.5 + Math.random() / 2));
  }

  private logEnd(url: string, error: ConnectError | undefined, retryMs: number): void {
    const log = this.options.log;
    const fields = { scheduler: url, retryMs, ...(error === undefined ? {} : { code: Code[error.code], err: error.rawMessage }) };
    if (error === undefined) {
      log.info(fields, 'the scheduler ended the session; reconnecting');
    } else if (isConnectionFailure(error)) {
      log.info(fields, 'connection to the scheduler failed (refused, or the scheduler went away); trying again');
    } else if (error.code === Code.Unavailable) {
      log.info(fields, 'scheduler unavailable (not running, or a standby); trying again');
    } else if (error.code === Code.Aborted) {
      log.error(fields, 'the session was replaced by another session of this node: is a second agent running with this node identity?');
    } else if (error.code === Code.PermissionDenied || error.code === Code.Unauthenticated) {
      log.error(fields, 'the scheduler refused this node certificate; join again with a new token if it was revoked');
    } else {
      log.warn(fields, 'scheduler session failed; reconnecting');
    }
  }
}
