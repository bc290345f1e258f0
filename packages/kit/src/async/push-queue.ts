export interface PushQueueOptions {
  /**
   * How long a taken item stays reclaimable: reclaim() hands back items the consumer took within
   * this many milliseconds, for a stream that failed after taking them. Default 0: none.
   */
  readonly retainTakenMs?: number;
}

/**
 * An AsyncIterable fed by push(), for the request side of a client or bidi stream or a server
 * stream fed by concurrent work. One consumer iterates it. close() ends the iteration after the
 * queued items, fail() ends it with an error after them, reclaim() ends it at once and hands the
 * items back.
 */
export class PushQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private taken: { item: T; at: number }[] = [];
  private wakeUp: (() => void) | undefined;
  private closed = false;
  private error: { reason: unknown } | undefined;
  private readonly retainTakenMs: number;

  constructor(options: PushQueueOptions = {}) {
    this.retainTakenMs = options.retainTakenMs ?? 0;
  }

  /** Queues item; false (and dropped) once the queue is closed. */
  push(item: T): boolean {
    if (this.closed) return false;
    this.items.push(item);
    this.wake();
    return true;
  }

  /** No more items: the iteration ends after the queued ones. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** No more items: the iteration throws reason after the queued ones. */
  fail(reason: unknown): void {
    this.error ??= { reason };
    this.close();
  }

  /**
   * Ends the iteration now; returns the items taken within the retain window, then the ones never
   * taken, in order.
   */
  reclaim(): T[] {
    const cutoff = Date.now() - this.retainTakenMs;
    const left = [...this.taken.filter((t) => t.at >= cutoff).map((t) => t.item), ...this.items];
    this.items = [];
    this.taken = [];
    this.close();
    return left;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        this.remember(item);
        yield item;
        continue;
      }
      if (this.error) throw this.error.reason;
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
      });
    }
  }

  private wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }

  private remember(item: T): void {
    if (this.retainTakenMs <= 0) return;
    const now = Date.now();
    this.taken.push({ item, at: now });
    const cutoff = now - this.retainTakenMs;
    let drop = 0;
    while (drop < this.taken.length && (this.taken[drop]?.at ?? now) < cutoff) drop += 1;
    if (drop > 0) this.taken.splice(0, drop);
  }
}
