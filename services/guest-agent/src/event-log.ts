// Process events and output since the last start, bounded in bytes, plus live delivery.
import { create } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { type WaitResponse, WaitResponseSchema } from '@shellwego/contracts/guest/v1/guest_pb';

interface Entry {
  readonly seq: number;
  readonly event: WaitResponse;
  readonly bytes: number;
}

// Bookkeeping cost charged per event on top of its output bytes.
const EVENT_OVERHEAD_BYTES = 64;

export class EventLog {
  private entries: Entry[] = [];
  private nextSeq = 0;
  private bytes = 0;
  /** The latest ProcessStarted, kept even after trimming so every reader learns the pid. */
  private lastStart: Entry | undefined;
  private waiters = new Set<() => void>();

  constructor(private readonly maxBytes: number) {}

  started(pid: number): void {
    this.lastStart = this.append(create(WaitResponseSchema, { time: timestampNow(), event: { case: 'started', value: { pid } } }), 0);
  }

  output(stream: 'stdout' | 'stderr', data: Buffer): void {
    const which = stream === 'stdout' ? OutputStream.STDOUT : OutputStream.STDERR;
    this.append(create(WaitResponseSchema, { time: timestampNow(), event: { case: 'output', value: { stream: which, data } } }), data.length);
  }

  exited(pid: number, exitCode: number | null, signal: string | null): void {
    const value = exitCode === null ? { pid, signal: signal ?? '' } : { pid, exitCode, signal: '' };
    this.append(create(WaitResponseSchema, { time: timestampNow(), event: { case: 'exited', value } }), 0);
  }

  /**
   * What is buffered since the last start, then live events, until signal aborts. A reader that
   * falls behind by more than the buffer skips the output it missed.
   */
  async *follow(signal: AbortSignal): AsyncGenerator<WaitResponse> {
    let cursor = this.lastStart?.seq ?? this.entries[0]?.seq ?? this.nextSeq;
    while (!signal.aborted) {
      const oldest = this.entries[0]?.seq ?? this.nextSeq;
      if (cursor < oldest) {
        if (this.lastStart !== undefined && this.lastStart.seq < oldest && cursor <= this.lastStart.seq) {
          yield this.lastStart.event;
        }
        cursor = oldest;
      }
      const entry = this.entries[cursor - oldest];
      if (entry !== undefined) {
        cursor += 1;
        yield entry.event;
        continue;
      }
      await this.changed(signal);
    }
  }

  private append(event: WaitResponse, payloadBytes: number): Entry {
    const entry = { seq: this.nextSeq++, event, bytes: payloadBytes + EVENT_OVERHEAD_BYTES };
    this.entries.push(entry);
    this.bytes += entry.bytes;
    let drop = 0;
    while (this.bytes > this.maxBytes && drop < this.entries.length - 1) {
      this.bytes -= this.entries[drop]?.bytes ?? 0;
      drop += 1;
    }
    if (drop > 0) {
      this.entries.splice(0, drop);
    }
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) {
      wake();
    }
    return entry;
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
