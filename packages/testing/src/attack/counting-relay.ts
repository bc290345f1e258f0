import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of a server that counts the bytes each way: what the client sent is
 * what the server's socket had to take in, so a test measures how much of a request the
 * server read (TCP delivers no more than the server's flow-control windows let the client send).
 */
export class CountingRelay {
  /** Bytes the clients sent towards the server. */
  toServer = 0;
  /** Bytes the server sent back. */
  toClient = 0;
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;

  private constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => {
        this.toServer += chunk.length;
      });
      upstream.on('data', (chunk: Buffer) => {
        this.toClient += chunk.length;
      });
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  static async start(target: { host: string; port: number }): Promise<CountingRelay> {
    const relay = new CountingRelay(target);
    await new Promise<void>((resolve) => relay.#server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get url(): string {
    const address = this.#server.address();
    return `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  reset(): void {
    this.toServer = 0;
    this.toClient = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
