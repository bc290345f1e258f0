// STAND-INS for tests, not production code: the far ends of the VM channels that this machine
// cannot provide in a unit test (a QEMU virtio-serial port, Firecracker's hybrid vsock device)
// and a minimal GuestService to talk to.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { create } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';
import { Code, ConnectError } from '@connectrpc/connect';
import { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { GuestService, WaitResponseSchema } from '@shellwego/contracts/guest/v1/guest_pb';
import type { ByteDevice } from '@shellwego/kit/vm-channel';

/**
 * A GuestService stand-in: Run answers pid = argv.length and remembers argv, Health reports it
 * in `detail`, Wait streams one output event per remembered argument then ends, Signal fails
 * with FAILED_PRECONDITION.
 */
export function standInGuestRoutes(router: ConnectRouter): void {
  let argv: string[] = [];
  router.service(GuestService, {
    run(req) {
      argv = [...req.argv];
      return { pid: req.argv.length };
    },
    health() {
      return { agentAlive: true, workloadRunning: argv.length > 0, healthy: true, detail: argv.join(' ') };
    },
    async *wait() {
      for (const arg of argv) {
        yield create(WaitResponseSchema, {
          event: { case: 'output', value: { stream: OutputStream.STDOUT, data: Buffer.from(arg) } },
        });
      }
    },
    signal() {
      throw new ConnectError('stand-in: no workload', Code.FailedPrecondition);
    },
    injectSecrets() {
      return { pid: 0 };
    },
  });
}

/**
 * STAND-IN for a QEMU virtio-serial port: `device` is the guest's character device, and
 * `hostPath` is a Unix socket like QEMU's `-chardev socket,server=on,wait=off`: one host client
 * at a time, later ones wait in line. Guest reads return 0 while no host is connected, block
 * while one is connected and silent; guest writes block while no host is connected.
 */
export class SerialPortStandIn {
  /**
   * When false, a guest read parked while a host leaves is not woken with 0: it models the
   * guest's reader not running between one host leaving and the next connecting.
   */
  reportDisconnects = true;
  readonly device: ByteDevice;
  private host: Socket | undefined;
  private readonly queue: Socket[] = [];
  private inbound: Buffer[] = [];
  private wakers: Array<() => void> = [];

  private constructor(
    readonly hostPath: string,
    private readonly server: Server,
  ) {
    this.device = {
      read: (into) => this.guestRead(into),
      write: (data) => this.guestWrite(data),
      close: async () => undefined,
    };
  }

  static async listen(hostPath: string): Promise<SerialPortStandIn> {
    const server = createServer();
    const port = new SerialPortStandIn(hostPath, server);
    server.on('connection', (socket) => port.accept(socket));
    await new Promise<void>((resolve) => server.listen(hostPath, resolve));
    return port;
  }

  /** Drops the current host connection from the port's side, as a killed client would. */
  dropHost(): void {
    this.host?.destroy();
  }

  async close(): Promise<void> {
    for (const socket of [...this.queue, ...(this.host ? [this.host] : [])]) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.pause();
    socket.on('error', () => undefined);
    if (this.host === undefined) {
      this.attach(socket);
    } else {
      this.queue.push(socket);
      socket.once('close', () => {
        const index = this.queue.indexOf(socket);
        if (index >= 0) {
          this.queue.splice(index, 1);
        }
      });
    }
  }

  private attach(socket: Socket): void {
    this.host = socket;
    socket.on('data', (chunk: Buffer) => {
      this.inbound.push(chunk);
      this.wake();
    });
    socket.once('close', () => {
      this.host = undefined;
      const next = this.queue.shift();
      if (next !== undefined) {
        this.attach(next);
      } else if (this.reportDisconnects) {
        this.wake();
      }
    });
    socket.resume();
    this.wake();
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const waker of wakers) {
      waker();
    }
  }

  private waitForChange(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  private async guestRead(into: Buffer): Promise<number> {
    for (;;) {
      const first = this.inbound[0];
      if (first !== undefined) {
        const n = first.copy(into, 0, 0, Math.min(first.length, into.length));
        if (n === first.length) {
          this.inbound.shift();
        } else {
          this.inbound[0] = first.subarray(n);
        }
        return n;
      }
      if (this.host === undefined && this.reportDisconnects) {
        await new Promise((resolve) => setImmediate(resolve));
        return 0;
      }
      await this.waitForChange();
    }
  }

  private async guestWrite(data: Uint8Array): Promise<void> {
    while (this.host === undefined) {
      await this.waitForChange();
    }
    const host = this.host;
    await new Promise<void>((resolve) => host.write(data, () => resolve()));
  }
}

export interface FirecrackerVsockStandInOptions {
  /** Unix socket path of the device (Firecracker's `uds_path`). */
  readonly udsPath: string;
  /** The guest port the "VM" listens on, and where its connections go (a guest Unix socket). */
  readonly guestPort: number;
  readonly guestSocketPath: string;
  /** Close this many CONNECT attempts after reading them, like Firecracker before the guest listens. */
  readonly refuseFirst?: number;
  /** Then leave this many CONNECT attempts unanswered (connection open, no reply). */
  readonly silentFirst?: number;
}

/**
 * STAND-IN for Firecracker's hybrid vsock device, host side, as documented: the host connects
 * to uds_path and sends "CONNECT <port>\n"; when the guest listens on that port the device
 * answers "OK <host port>\n" and the stream is the guest connection, otherwise it closes.
 */
export class FirecrackerVsockStandIn {
  connectAttempts = 0;
  private refusalsLeft: number;
  private silencesLeft: number;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly options: FirecrackerVsockStandInOptions,
    private readonly server: Server,
  ) {
    this.refusalsLeft = options.refuseFirst ?? 0;
    this.silencesLeft = options.silentFirst ?? 0;
  }

  static async listen(options: FirecrackerVsockStandInOptions): Promise<FirecrackerVsockStandIn> {
    const server = createServer();
    const device = new FirecrackerVsockStandIn(options, server);
    server.on('connection', (socket) => device.accept(socket));
    await new Promise<void>((resolve) => server.listen(options.udsPath, resolve));
    return device;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private accept(host: Socket): void {
    this.track(host);
    let line = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      line = Buffer.concat([line, chunk]);
      const newline = line.indexOf(0x0a);
      if (newline < 0) {
        return;
      }
      host.off('data', onData);
      host.pause();
      this.connectAttempts += 1;
      const match = /^CONNECT (\d+)$/.exec(line.toString('latin1', 0, newline));
      if (match === null || Number(match[1]) !== this.options.guestPort || this.refusalsLeft > 0) {
        this.refusalsLeft = Math.max(0, this.refusalsLeft - 1);
        host.destroy();
        return;
      }
      if (this.silencesLeft > 0) {
        this.silencesLeft -= 1;
        return;
      }
      const rest = line.subarray(newline + 1);
      const guest = connect(this.options.guestSocketPath);
      this.track(guest);
      guest.once('connect', () => {
        // Firecracker reports the host-side port number it allocated for this connection.
        host.write(`OK ${1073741824 + this.connectAttempts}\n`);
        if (rest.length > 0) {
          guest.write(rest);
        }
        host.pipe(guest);
        guest.pipe(host);
        host.resume();
      });
      guest.once('error', () => host.destroy());
      guest.once('close', () => host.destroy());
      host.once('close', () => guest.destroy());
    };
    host.on('data', onData);
  }
}
