// A workload's recent output, in memory only and bounded in bytes (the oldest chunks go
// first), with live delivery to followers. Never written to disk: a workload may print anything.
import type { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';

export interface OutputChunk {
  readonly stream: OutputStream;
  readonly data: Uint8Array;
  readonly time: Date;
}

interface Stored extends OutputChunk {
  readonly seq: number;
}

export class OutputBuffer {
  private chunks: Stored[] = [];
  private bytes = 0;
  private nextSeq = 0;
  private ended = false;
  private waiters = new Set<() => void>();

  constructor(private maxBytes: number) {}

  get sizeBytes(): number {
    return this.bytes;
  }

  append(stream: OutputStream, data: Uint8Array): void {
    if (this.ended || data.byteLength === 0) return;
    // A chunk larger than the whole buffer keeps only its tail.
    const kept = data.byteLength > this.maxBytes ? data.subarray(data.byteLength - this.maxBytes) : data;
    this.chunks.push({ seq: this.nextSeq++, stream, data: kept, time: new Date() });
    this.bytes += kept.byteLength;
    let drop = 0;
    while (this.bytes > this.maxBytes && drop < this.chunks.length) {
      this.bytes -= this.chunks[drop]?.data.byteLength ?? 0;
      drop += 1;
    }
    if (drop > 0) this.chunks.splice(0, drop);
    this.wake();
  }

  /** Keeps at most the last `maxBytes` (an ended instance keeps only its tail). */
  shrink(maxBytes: number): void {
    this.maxBytes = Math.min(this.maxBytes, maxBytes);
    let drop = 0;
    while (this.bytes > this.maxBytes && drop < this.chunks.length) {
      this.bytes -= this.chunks[drop]?.data.byteLength ?? 0;
      drop += 1;
    }
    if (drop > 0) this.chunks.splice(0, drop);
  }

  /** No more output will come (the instance is gone); followers finish after what is buffered. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The buffered output, then (with follow) live output until end() or the signal aborts. */
  async *read(follow: boolean, signal: AbortSignal): AsyncGenerator<OutputChunk> {
    let cursor = this.chunks[0]?.seq ?? this.nextSeq;
    while (!signal.aborted) {
      const oldest = this.chunks[0]?.seq ?? this.nextSeq;
      // A reader that fell behind the buffer skips what was dropped.
      if (cursor < oldest) cursor = oldest;
      const chunk = this.chunks[cursor - oldest];
      if (chunk !== undefined) {
        cursor += 1;
        yield chunk;
        continue;
      }
      if (!follow || this.ended) return;
      await this.changed(signal);
    }
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
