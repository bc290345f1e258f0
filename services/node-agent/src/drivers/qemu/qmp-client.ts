// A minimal QEMU Machine Protocol client: JSON lines on a Unix socket. QEMU sends its greeting
// once its main loop runs (machine and devices initialised), so a greeting means "started".
import { connect, type Socket } from 'node:net';

export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpError';
  }
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
}

export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private greeting: Pending | undefined;
  private closedReason: string | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.fail('QMP connection closed'));
  }

  /** Connects, waits for the greeting and leaves capabilities negotiation mode. */
  static async connect(path: string, timeoutMs: number): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
    const client = new QmpClient(socket);
    const timer = setTimeout(() => client.fail(`no QMP greeting within ${timeoutMs} ms`), timeoutMs);
    try {
      await new Promise((resolve, reject) => {
        client.greeting = { resolve, reject };
      });
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      client.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command; resolves with its "return" value, rejects with its "error" description. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new QmpError(this.closedReason));
    }
    const id = this.nextId;
    this.nextId += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(`${JSON.stringify({ execute: command, id, ...(args !== undefined ? { arguments: args } : {}) })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line !== '') {
        this.onMessage(line);
      }
    }
  }

  private onMessage(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(`QMP sent a line that is not JSON: ${line.slice(0, 80)}`);
      return;
    }
    if ('QMP' in message) {
      this.greeting?.resolve(message.QMP);
      this.greeting = undefined;
      return;
    }
    const id = typeof message.id === 'number' ? message.id : undefined;
    const waiter = id === undefined ? undefined : this.pending.get(id);
    if (id === undefined || waiter === undefined) {
      return; // an asynchronous event
    }
    this.pending.delete(id);
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string };
      waiter.reject(new QmpError(`${error.class ?? 'Error'}: ${error.desc ?? 'no description'}`));
    } else {
      waiter.resolve(message.return);
    }
  }

  private fail(reason: string): void {
    if (this.closedReason !== undefined) {
      return;
    }
    this.closedReason = reason;
    this.greeting?.reject(new QmpError(reason));
    this.greeting = undefined;
    for (const waiter of this.pending.values()) {
      waiter.reject(new QmpError(reason));
    }
    this.pending.clear();
    this.socket.destroy();
  }
}
