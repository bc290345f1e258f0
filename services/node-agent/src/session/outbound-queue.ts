/**
 * The request side of the Session stream: an AsyncIterable fed by push(). close() hands back
 * what the transport never took and what it took within the last `recentMs`: an item written
 * to a stream that then failed may never have been processed (a standby reads nothing; an active
 * scheduler that steps down may not have committed it), so the session sends it again.
 */
export class OutboundQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private taken: { item: T; at: number }[] = [];
  private wakeUp: (() => void) | undefined;
  private closed = false;

  constructor(private readonly recentMs: number) {}

  push(item: T): boolean {
    if (this.closed) return false;
    this.items.push(item);
    this.wakeUp?.();
    return true;
  }

  /** Ends the stream; returns the recently taken items, then the untaken ones, in order. */
  close(): T[] {
    this.closed = true;
    const cutoff = Date.now() - this.recentMs;
    const left = [...this.taken.filter((t) => t.at >= cutoff).map((t) => t.item), ...this.items];
    this.items = [];
    this.taken = [];
    this.wakeUp?.();
    return left;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        this.remember(item);
        yield item;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
      });
      this.wakeUp = undefined;
    }
  }

  private remember(item: T): void {
    const now = Date.now();
    this.taken.push({ item, at: now });
    let drop = 0;
    while (drop < this.taken.length && (this.taken[drop]?.at ?? now) < now - this.recentMs) drop += 1;
    if (drop > 0) this.taken.splice(0, drop);
  }
}
