// Guest side of a virtio-serial port: turns the one long-lived byte pipe into a sequence of
// HTTP/2 sessions, one per host connection (see serial-handshake.ts for the protocol).
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ByteDevice } from './byte-device.js';
import { GoawayWatch } from './goaway-watch.js';
import { HELLO_PREFIX, HTTP2_PREFACE, readyLine, scanLine, startsCompatibly } from './serial-handshake.js';

export interface DeviceLinkEvents {
  /** A host completed the handshake: serve HTTP/2 on this duplex until it ends. */
  onSession(duplex: Duplex): void;
  /** Link state changes worth a log line (no payload bytes, ever). */
  onNotice?(message: string, fields?: Record<string, unknown>): void;
}

export interface DeviceLinkOptions {
  /** Polling interval bounds while no host is connected (reads return 0 at once then). */
  readonly idlePollMinMs?: number;
  readonly idlePollMaxMs?: number;
  readonly readBufferBytes?: number;
}

export interface DeviceLink {
  close(): Promise<void>;
}

type Phase = 'hello' | 'preface' | 'session';

interface QueuedWrite {
  readonly epoch: number;
  readonly data: Uint8Array;
  readonly done: (err?: Error) => void;
}

export function startDeviceLink(device: ByteDevice, events: DeviceLinkEvents, options: DeviceLinkOptions = {}): DeviceLink {
  const link = new Link(device, events, options);
  const loop = link.readLoop();
  return {
    async close() {
      link.closed = true;
      link.endSession('closing');
      // A read parked in the kernel only returns when the host sends or leaves: do not wait for it.
      await Promise.race([loop, sleep(50)]);
    },
  };
}

class Link {
  closed = false;
  // Every write carries the epoch it was issued in; writes of an ended session are dropped
  // unless already in the kernel.
  private epoch = 0;
  private phase: Phase = 'hello';
  private pending: Buffer = Buffer.alloc(0);
  private session: SessionDuplex | undefined;
  private readonly writes: QueuedWrite[] = [];
  private writing = false;
  private hostPresent = false;

  constructor(
    private readonly device: ByteDevice,
    private readonly events: DeviceLinkEvents,
    private readonly options: DeviceLinkOptions,
  ) {}

  async readLoop(): Promise<void> {
    const minPoll = this.options.idlePollMinMs ?? 5;
    const maxPoll = this.options.idlePollMaxMs ?? 50;
    const size = this.options.readBufferBytes ?? 64 * 1024;
    let poll = minPoll;
    while (!this.closed) {
      if (this.session !== undefined) {
        await this.session.readWanted();
      }
      let n: number;
      const buf = Buffer.allocUnsafe(size);
      try {
        n = await this.device.read(buf);
      } catch (err) {
        if (this.closed) {
          return;
        }
        this.events.onNotice?.('channel device read failed; retrying', { code: errorCode(err) });
        this.endSession('read error');
        await sleep(maxPoll * 10);
        continue;
      }
      if (n === 0) {
        if (this.hostPresent) {
          this.hostPresent = false;
          this.events.onNotice?.('host end of the channel disconnected');
        }
        this.endSession('host disconnected');
        await sleep(poll);
        poll = Math.min(poll * 2, maxPoll);
        continue;
      }
      poll = minPoll;
      this.hostPresent = true;
      this.receive(buf.subarray(0, n));
    }
  }

  private receive(chunk: Buffer): void {
    if (this.phase === 'session' && this.session !== undefined) {
      this.session.deliver(chunk);
      return;
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.advanceHandshake();
  }

  private advanceHandshake(): void {
    for (;;) {
      if (this.phase === 'hello') {
        const scan = scanLine(this.pending, HELLO_PREFIX);
        if (scan.kind === 'none') {
          this.pending = Buffer.alloc(0);
          return;
        }
        if (scan.kind === 'partial') {
          this.pending = this.pending.subarray(scan.start);
          return;
        }
        this.enqueueWrite(this.epoch, readyLine(scan.nonce)).catch(() => undefined);
        this.pending = this.pending.subarray(scan.end);
        this.phase = 'preface';
        continue;
      }
      if (this.pending.length === 0) {
        return;
      }
      // After READY the host sends either another HELLO (it sent several before our answer
      // reached it) or the HTTP/2 preface. Anything else is stale: look for a HELLO again.
      if (startsCompatibly(this.pending, HELLO_PREFIX)) {
        if (this.pending.length < HELLO_PREFIX.length) {
          return;
        }
        this.phase = 'hello';
        continue;
      }
      if (startsCompatibly(this.pending, HTTP2_PREFACE)) {
        if (this.pending.length < HTTP2_PREFACE.length) {
          return;
        }
        this.beginSession();
        return;
      }
      this.phase = 'hello';
    }
  }

  private beginSession(): void {
    const session = new SessionDuplex(this, this.epoch);
    this.session = session;
    this.phase = 'session';
    const first = this.pending;
    this.pending = Buffer.alloc(0);
    this.events.onNotice?.('host connected; HTTP/2 session started');
    this.events.onSession(session);
    session.deliver(first);
  }

  /** Ends the current session (if any) and waits for the next HELLO. */
  endSession(reason: string, from?: SessionDuplex): void {
    if (from !== undefined && from !== this.session) {
      return;
    }
    const session = this.session;
    this.session = undefined;
    this.phase = 'hello';
    this.pending = Buffer.alloc(0);
    this.epoch += 1;
    for (const queued of this.writes.splice(0)) {
      queued.done();
    }
    if (session !== undefined) {
      this.events.onNotice?.('HTTP/2 session on the channel ended', { reason });
      session.finish();
    }
  }

  enqueueWrite(epoch: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.writes.push({ epoch, data, done: (err) => (err ? reject(err) : resolve()) });
      void this.pumpWrites();
    });
  }

  private async pumpWrites(): Promise<void> {
    if (this.writing) {
      return;
    }
    this.writing = true;
    try {
      for (let item = this.writes.shift(); item !== undefined; item = this.writes.shift()) {
        if (item.epoch !== this.epoch) {
          item.done();
          continue;
        }
        try {
          await this.device.write(item.data);
          item.done();
        } catch (err) {
          item.done(err instanceof Error ? err : new Error(String(err)));
          this.events.onNotice?.('channel device write failed', { code: errorCode(err) });
          this.endSession('write error');
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

// The HTTP/2 server session's socket: reads come from the link, writes go to the device queue.
class SessionDuplex extends Duplex {
  private wanted: (() => void) | undefined;
  private paused = false;
  private finished = false;
  private readonly goaway = new GoawayWatch();

  constructor(
    private readonly link: Link,
    private readonly epoch: number,
  ) {
    super();
  }

  deliver(chunk: Buffer): void {
    if (this.finished || chunk.length === 0) {
      return;
    }
    if (!this.push(chunk)) {
      this.paused = true;
    }
  }

  /** Resolves when the session wants more input (HTTP/2 flow control reaches the device). */
  readWanted(): Promise<void> {
    if (!this.paused || this.finished) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.wanted = resolve;
    });
  }

  /** The link ended this session: end its input and let the HTTP/2 session go. */
  finish(): void {
    if (this.finished) {
      return;
    }
    this.finished = true;
    this.release();
    this.push(null);
    this.destroy();
  }

  override _read(): void {
    this.paused = false;
    this.release();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.goaway.observe(chunk);
    this.link.enqueueWrite(this.epoch, chunk).then(() => {
      callback();
      if (this.goaway.sawErrorGoaway) {
        // The server gave up on this peer's bytes; the next HELLO starts a new session.
        this.link.endSession('HTTP/2 protocol error from the host', this);
      }
    }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.link.endSession('server ended the session', this);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.finished = true;
    this.release();
    this.link.endSession('session closed', this);
    callback(error);
  }

  private release(): void {
    const wanted = this.wanted;
    this.wanted = undefined;
    wanted?.();
  }
}

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'unknown';
}
