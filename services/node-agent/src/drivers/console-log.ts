// The VM's serial console, kept on disk within a fixed size. The guest decides how much it writes
// there, so the file is never the VMM's to grow: QEMU serves the console on a Unix socket and the
// agent reads it (ConsolePump) into a BoundedLog, two files of half the bound each (console.log
// and, once that is full, console.log.1 holding the previous half), so the pair never exceeds the
// bound however long the guest writes. Readers take the tail only (readLogTail).
import { closeSync, fstatSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The console's bound on disk unless configured (CONSOLE_LOG_BYTES). */
export const DEFAULT_CONSOLE_LOG_BYTES = 1024 * 1024;

/** console.log.1: the half before console.log. */
export function rotatedPath(path: string): string {
  return `${path}.1`;
}

/** Appends to path, rotating to path.1 so the two stay within maxBytes together. */
export class BoundedLog {
  private fd: number;
  private size: number;
  private readonly half: number;

  constructor(
    private readonly path: string,
    maxBytes: number,
  ) {
    this.half = Math.max(1, Math.floor(maxBytes / 2));
    // Appends to what an earlier agent process wrote (a re-adopted VM's console).
    this.fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  append(chunk: Uint8Array): void {
    let data = chunk;
    if (data.length > this.half) data = data.subarray(data.length - this.half);
    if (this.size + data.length > this.half) {
      closeSync(this.fd);
      renameSync(this.path, rotatedPath(this.path));
      this.fd = openSync(this.path, 'w', 0o600);
      this.size = 0;
    }
    let written = 0;
    while (written < data.length) written += writeSync(this.fd, data, written);
    this.size += data.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The last `bytes` of a log, reading no more than that (from path.1 too when path holds less). */
export function readLogTail(path: string, bytes: number): Buffer {
  const own = readFileTail(path, bytes);
  if (own.length >= bytes) return own;
  return Buffer.concat([readFileTail(rotatedPath(path), bytes - own.length), own]);
}

function readFileTail(path: string, bytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, size - length + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** Bytes on disk for a log and its rotated half. */
export function logBytes(path: string): number {
  const sizeOf = (p: string) => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  return sizeOf(path) + sizeOf(rotatedPath(path));
}

const CONNECT_RETRY_MS = 25;

/**
 * Reads the console socket the VMM serves into a BoundedLog until the VMM closes it or close() is
 * called. QEMU waits for this connection before it starts the VM (wait=on), so nothing the guest
 * prints is missed; while no agent is connected (an agent restart), QEMU drops console output.
 */
export class ConsolePump {
  private socket: Socket | undefined;
  private closed = false;
  private readonly log: BoundedLog;

  private constructor(logPath: string, maxBytes: number) {
    this.log = new BoundedLog(logPath, maxBytes);
  }

  /** Starts connecting to socketPath (retrying until it is there, or until close()). */
  static attach(socketPath: string, logPath: string, maxBytes: number): ConsolePump {
    const pump = new ConsolePump(logPath, maxBytes);
    void pump.connectLoop(socketPath);
    return pump;
  }

  private async connectLoop(socketPath: string): Promise<void> {
    while (!this.closed) {
      const socket = await tryConnect(socketPath);
      if (socket === undefined) {
        await sleep(CONNECT_RETRY_MS);
        continue;
      }
      if (this.closed) {
        socket.destroy();
        return;
      }
      this.socket = socket;
      socket.on('data', (chunk: Buffer) => {
        if (!this.closed) this.log.append(chunk);
      });
      socket.on('error', () => undefined);
      // The VMM is gone (or dropped us): nothing more will come.
      socket.once('close', () => this.close());
      return;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    this.log.close();
  }
}

function tryConnect(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => resolve(undefined));
  });
}
