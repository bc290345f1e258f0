// Follows GuestService.Wait for one VM: output into the instance's buffer, starts and exits to
// the instance. A Wait stream that breaks while the VM lives is opened again; the guest replays
// what it buffered since the last start, so events older than the last one seen are skipped.

import { setTimeout as sleep } from 'node:timers/promises';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import type { Client } from '@connectrpc/connect';
import type { GuestService, ProcessExited } from '@shellwego/contracts/guest/v1/guest_pb';
import type { OutputBuffer } from './output-buffer.js';

const REOPEN_DELAY_MS = 500;

export interface FollowerEvents {
  onStarted(pid: number): void;
  onExited(exit: ProcessExited): void;
  /** The Wait stream failed (the follower keeps trying); for logs. */
  onStreamError(error: unknown): void;
}

export class WorkloadFollower {
  private readonly abort = new AbortController();
  private lastSeenMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly client: Client<typeof GuestService>,
    private readonly output: OutputBuffer,
    private readonly events: FollowerEvents,
  ) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let reopened = false;
    while (!signal.aborted) {
      try {
        for await (const event of this.client.wait({}, { signal, timeoutMs: 0 })) {
          const at = event.time === undefined ? Date.now() : timestampMs(event.time);
          // After a reopen the replay starts at the last start: skip what this follower saw.
          if (reopened && at < this.lastSeenMs) continue;
          this.lastSeenMs = Math.max(this.lastSeenMs, at);
          const value = event.event;
          if (value.case === 'output') this.output.append(value.value.stream, value.value.data);
          else if (value.case === 'started') this.events.onStarted(value.value.pid);
          else if (value.case === 'exited') this.events.onExited(value.value);
        }
      } catch (error) {
        if (signal.aborted) return;
        this.events.onStreamError(error);
      }
      reopened = true;
      await sleep(REOPEN_DELAY_MS, undefined, { signal }).catch(() => undefined);
    }
  }
}
