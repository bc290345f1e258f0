// One HTTP/2 connection to a guest agent at a time, opened through an asynchronous connector
// (handshakes included) so that connect failures reach the caller as the connector's own
// ConnectError. Fits connect-node's session manager interface (NodeHttp2ClientSessionManager).
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';

export type GuestConnector = (signal: AbortSignal) => Promise<Socket>;

export class GuestSessionManager {
  private session: http2.ClientHttp2Session | undefined;
  private opening: Promise<http2.ClientHttp2Session> | undefined;
  private abort = new AbortController();
  private openStreams = 0;

  constructor(
    readonly authority: string,
    private readonly connector: GuestConnector,
  ) {}

  async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, 'signal'>,
  ): Promise<http2.ClientHttp2Stream> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.ready();
      try {
        const stream = session.request({ ...headers, ':method': method, ':path': path }, options);
        this.track(session, stream);
        return stream;
      } catch (err) {
        // The session died between ready() and request(): one fresh connection, then give up.
        if ((session.closed || session.destroyed) && attempt === 0) {
          this.forget(session);
          continue;
        }
        throw err;
      }
    }
  }

  notifyResponseByteRead(): void {
    // No keepalive pings on a VM channel: a dead VM closes the host end of the channel.
  }

  /** Closes the connection (streams in flight fail) and cancels a connect in progress. */
  close(): void {
    this.abort.abort();
    this.abort = new AbortController();
    const session = this.session;
    this.session = undefined;
    session?.destroy();
  }

  private ready(): Promise<http2.ClientHttp2Session> {
    const current = this.session;
    if (current !== undefined && !current.closed && !current.destroyed) {
      return Promise.resolve(current);
    }
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<http2.ClientHttp2Session> {
    const socket = await this.connector(this.abort.signal);
    const session = http2.connect(this.authority, { createConnection: () => socket });
    // Failures reach the streams of the session; the session itself is simply replaced.
    session.on('error', () => undefined);
    session.once('close', () => this.forget(session));
    session.once('goaway', () => this.forget(session));
    // An idle channel must not keep the process alive.
    session.unref();
    this.session = session;
    return session;
  }

  private track(session: http2.ClientHttp2Session, stream: http2.ClientHttp2Stream): void {
    if (this.openStreams++ === 0) {
      session.ref();
    }
    stream.once('close', () => {
      if (--this.openStreams === 0 && !session.destroyed) {
        session.unref();
      }
    });
  }

  private forget(session: http2.ClientHttp2Session): void {
    if (this.session === session) {
      this.session = undefined;
      this.openStreams = 0;
    }
  }
}
