import type { SessionResponse } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { SchedulerError } from '../model/scheduler-error.js';

let nextSessionId = 1;

/** One node's live Session stream: an outbound queue the RPC handler drains. */
export class NodeSession {
  readonly id = nextSessionId++;
  private readonly queue: SessionResponse[] = [];
  private head = 0;
  private wakeUp: (() => void) | undefined;
  private endedWith: { error: SchedulerError | undefined } | undefined;

  constructor(readonly nodeId: string) {}

  get open(): boolean {
    return this.endedWith === undefined;
  }

  send(message: SessionResponse): void {
    if (this.endedWith !== undefined) return;
    this.queue.push(message);
    this.wakeUp?.();
  }

  /** Ends the stream after what is queued, with `error` as its status if given. */
  end(error?: SchedulerError): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = { error };
    this.wakeUp?.();
  }

  /** The queued messages, then everything sent later, until the session ends or `signal` aborts. */
  async *messages(signal: AbortSignal): AsyncGenerator<SessionResponse> {
    const onAbort = () => this.end();
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (this.head < this.queue.length) {
          const message = this.queue[this.head++] as SessionResponse;
          if (this.head > 1_024) {
            this.queue.splice(0, this.head);
            this.head = 0;
          }
          yield message;
        }
        if (this.endedWith !== undefined) {
          if (this.endedWith.error !== undefined) throw this.endedWith.error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
        });
        this.wakeUp = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.end();
    }
  }
}

/** The live sessions of the active scheduler: at most one per node, the newest wins. */
export class SessionHub {
  private readonly sessions = new Map<string, NodeSession>();

  /** Registers a new session for `nodeId`, ending the one it replaces. */
  open(nodeId: string): NodeSession {
    const session = new NodeSession(nodeId);
    this.sessions.get(nodeId)?.end(new SchedulerError('aborted', 'replaced by a newer session of the same node'));
    this.sessions.set(nodeId, session);
    return session;
  }

  /** Forgets `session` if it still is its node's current one; returns whether it was. */
  close(session: NodeSession): boolean {
    session.end();
    if (this.sessions.get(session.nodeId) !== session) return false;
    this.sessions.delete(session.nodeId);
    return true;
  }

  /** Sessions open now, one per connected node. */
  get size(): number {
    return this.sessions.size;
  }

  current(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  isCurrent(session: NodeSession): boolean {
    return this.sessions.get(session.nodeId) === session;
  }

  send(nodeId: string, message: SessionResponse): boolean {
    const session = this.sessions.get(nodeId);
    if (session === undefined || !session.open) return false;
    session.send(message);
    return true;
  }

  /** Ends every session, e.g. with UNAVAILABLE when this scheduler stops being active. */
  endAll(error: SchedulerError): void {
    for (const session of this.sessions.values()) session.end(error);
    this.sessions.clear();
  }
}
