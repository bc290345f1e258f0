// A process's recent output, in memory only and bounded in bytes (the oldest entries go first),
// with live delivery to followers. Each entry has a sequence number; a follower keeps a cursor and
// skips what was trimmed past it.
import type { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';

export interface OutputChunk {
  readonly stream: OutputStream;
  readonly data: Uint8Array;
  readonly time: Date;
}

export interface OutputLogOptions {
  /** Bookkeeping cost charged per entry on top of its output bytes. Default 0. */
  readonly entryOverheadBytes?: number;
}

interface Entry<E> {
  readonly seq: number;
  readonly value: OutputChunk | E;
  readonly bytes: number;
}

/**
 * Output chunks, plus (with E) events such as a process start or exit kept in order among them.
 * An event recorded as a restart begins what every new reader sees and reaches a reader even
 * after trimming, so each learns which run the output belongs to.
 */
export class OutputLog<E = never> {
  private entries: Entry<E>[] = [];
  private bytes = 0;
  private nextSeq = 0;
  private ended = false;
  private lastRestart: Entry<E> | undefined;
  private waiters = new Set<() => void>();
  private readonly overhead: number;

  constructor(
    private maxBytes: number,
    options: OutputLogOptions = {},
  ) {
    this.overhead = options.entryOverheadBytes ?? 0;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  append(stream: OutputStream, data: Uint8Array): void {
    if (this.ended || data.byteLength === 0) return;
    // A chunk larger than the whole log keeps only its tail.
    const room = Math.max(0, this.maxBytes - this.overhead);
    const kept = data.byteLength > room ? data.subarray(data.byteLength - room) : data;
    this.add({ stream, data: kept, time: new Date() }, kept.byteLength);
  }

  /** Records an event among the output; with restart, new readers start at it. */
  record(event: E, options: { restart?: boolean } = {}): void {
    if (this.ended) return;
    const entry = this.add(event, 0);
    if (options.restart === true) this.lastRestart = entry;
  }

  /** Keeps at most the last `maxBytes` from now on (an ended process keeps only its tail). */
  shrink(maxBytes: number): void {
    this.maxBytes = Math.min(this.maxBytes, maxBytes);
    this.trim(0);
  }

  /** No more output will come; followers finish after what is buffered. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /**
   * From the last restart (or the oldest entry), then (with follow) live entries until end() or
   * the signal aborts. A reader that falls behind by more than the log skips what it missed.
   */
  async *read(follow: boolean, signal: AbortSignal): AsyncGenerator<OutputChunk | E> {
    let cursor = this.lastRestart?.seq ?? this.entries[0]?.seq ?? this.nextSeq;
    while (!signal.aborted) {
      const oldest = this.entries[0]?.seq ?? this.nextSeq;
      if (cursor < oldest) {
        const restart = this.lastRestart;
        if (restart !== undefined && restart.seq < oldest && cursor <= restart.seq) yield restart.value;
        cursor = oldest;
      }
      const entry = this.entries[cursor - oldest];
      if (entry !== undefined) {
        cursor += 1;
        yield entry.value;
        continue;
      }
      if (!follow || this.ended) return;
      await this.changed(signal);
    }
  }

  private add(value: OutputChunk | E, payloadBytes: number): Entry<E> {
    const entry = { seq: this.nextSeq++, value, bytes: payloadBytes + this.overhead };
    this.entries.push(entry);
    this.bytes += entry.bytes;
    // The entry just added stays even when it alone is over the bound (an event's overhead).
    this.trim(1);
    this.wake();
    return entry;
  }

  /** Drops the oldest entries while over the bound, keeping at least the newest `keep`. */
  private trim(keep: number): void {
    let drop = 0;
    while (this.bytes > this.maxBytes && drop < this.entries.length - keep) {
      this.bytes -= this.entries[drop]?.bytes ?? 0;
      drop += 1;
    }
    if (drop > 0) this.entries.splice(0, drop);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  private changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
