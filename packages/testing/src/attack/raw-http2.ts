import { connect, type TLSSocket } from 'node:tls';

/** HTTP/2 frame types and codes a test looks for (RFC 9113). */
export const FrameType = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7 } as const;
export const ErrorCode = { NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, REFUSED_STREAM: 0x7, ENHANCE_YOUR_CALM: 0xb } as const;
export const Setting = { MAX_CONCURRENT_STREAMS: 0x3, MAX_HEADER_LIST_SIZE: 0x6 } as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export interface RawHttp2Options {
  readonly host: string;
  readonly port: number;
  readonly caPem: string;
  readonly certPem?: string;
  readonly keyPem?: string;
  /** The source address to connect from (any of 127.0.0.0/8 on loopback), to act as a distinct peer. */
  readonly localAddress?: string;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;

/**
 * An HTTP/2 client written frame by frame, so a test can do what a well-behaved client
 * library never does: open more streams than the server allows, or send headers larger
 * than it accepts, and see exactly which frames the server answers with.
 */
export class RawHttp2Connection {
  readonly frames: Frame[] = [];
  /** The server's SETTINGS, by identifier. */
  readonly serverSettings = new Map<number, number>();
  closed = false;
  #buffer = Buffer.alloc(0);
  readonly #waiters = new Set<() => void>();

  private constructor(private readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  /** TLS with ALPN h2, the preface and SETTINGS both ways (acknowledged, so the server enforces its own). */
  static async open(options: RawHttp2Options): Promise<RawHttp2Connection> {
    const socket = connect({
      host: options.host,
      port: options.port,
      ca: options.caPem,
      ...(options.certPem === undefined ? {} : { cert: options.certPem, key: options.keyPem }),
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('the server closed the connection before the TLS handshake finished')));
    });
    const connection = new RawHttp2Connection(socket);
    socket.write(Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0))]));
    await connection.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & ACK) === 0, 10_000);
    // A PING answered after our SETTINGS ACK means the server has applied its settings to us.
    socket.write(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    await connection.waitFor((f) => f.type === FrameType.PING && (f.flags & ACK) !== 0, 10_000);
    return connection;
  }

  /** Opens stream `streamId` with these headers (pseudo-headers first), leaving it open unless `endStream`. */
  headers(streamId: number, headers: readonly (readonly [string, string])[], endStream = false): void {
    const block = Buffer.concat(headers.map(([name, value]) => Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)])));
    this.socket.write(frame(FrameType.HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, block));
  }

  /** Sends `payload` on stream `streamId` (within the stream's window: a test's requests are small). */
  data(streamId: number, payload: Buffer, endStream = false): void {
    this.socket.write(frame(FrameType.DATA, endStream ? END_STREAM : 0, streamId, payload));
  }

  /** Resolves with the first frame received (so far or later) matching `match`; undefined on timeout or close. */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs: number): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined || this.closed || Date.now() >= deadline) return found;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) break;
      const received: Frame = {
        type: this.#buffer.readUInt8(3),
        flags: this.#buffer.readUInt8(4),
        streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buffer.subarray(9, 9 + length),
      };
      this.#buffer = this.#buffer.subarray(9 + length);
      this.frames.push(received);
      if (received.type === FrameType.SETTINGS && (received.flags & ACK) === 0) {
        for (let i = 0; i + 6 <= received.payload.length; i += 6)
          this.serverSettings.set(received.payload.readUInt16BE(i), received.payload.readUInt32BE(i + 2));
        this.socket.write(frame(FrameType.SETTINGS, ACK, 0, Buffer.alloc(0)));
      }
    }
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
    this.#waiters.clear();
  }
}

/** The error code of a RST_STREAM or GOAWAY frame. */
export function errorCodeOf(f: Frame): number {
  return f.type === FrameType.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}

/** GRPC request headers for `path` on `authority`, pseudo-headers first. */
export function grpcRequestHeaders(path: string, extra: readonly (readonly [string, string])[] = []): (readonly [string, string])[] {
  return [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':path', path],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK string literal without Huffman coding (RFC 7541 section 5.2). */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([hpackInteger(bytes.length, 7), bytes]);
}

function hpackInteger(value: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([value]);
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}
