import http2 from 'node:http2';

export interface RawCallResult {
  /** The grpc-status the server answered (from headers or trailers); undefined if the stream ended without one. */
  readonly grpcStatus: number | undefined;
  /** The RST_STREAM code the stream closed with (0 = NO_ERROR), as Node reports it. */
  readonly rstCode: number;
}

/** Frames `body` as one gRPC message (5-byte prefix). */
export function grpcFrame(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(frame, 5);
  return frame;
}

/**
 * One gRPC call made byte by byte on an HTTP/2 session, as an attacker would: the request
 * body is written as fast as the server's windows allow, and the call ends when the server
 * answers and closes the stream, whether or not the body was all sent.
 */
export function rawGrpcCall(session: http2.ClientHttp2Session, path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}): Promise<RawCallResult> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let grpcStatus: number | undefined;
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = Number(t['grpc-status']);
    });
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ grpcStatus, rstCode: stream.rstCode ?? 0 }));
    stream.end(body);
  });
}

/** What a call got: a status, or a stream still open (server streams), or nothing in time. */
export interface RawAnswer {
  readonly status: number | undefined;
  /** grpc-message, decoded. */
  readonly message: string;
  /** The response was still open after `openAfterMs` (fine for a server stream). */
  readonly open: boolean;
  /** No status within `hangMs`. */
  readonly hung: boolean;
  /** The RST_STREAM code the stream closed with (0: NO_ERROR). */
  readonly rstCode: number;
}

export interface RawAnswerOptions {
  /** Treat the call as a server stream: answered once it stays open this long. */
  readonly streaming: boolean;
  readonly openAfterMs?: number;
  readonly hangMs?: number;
}

/** One gRPC call with `body` as the whole request; resolves with what the server answered, then cancels the stream. */
export function rawGrpcAnswer(session: http2.ClientHttp2Session, path: string, body: Buffer, options: RawAnswerOptions): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '10S' });
    let status: number | undefined;
    let message = '';
    let settled = false;
    const done = (outcome: { open: boolean; hung: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(openTimer);
      clearTimeout(hangTimer);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve({ status, message, rstCode: stream.rstCode ?? 0, ...outcome });
    };
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
    };
    stream.on('response', read);
    stream.on('trailers', read);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => done({ open: false, hung: false }));
    const openTimer = setTimeout(() => {
      if (options.streaming && status === undefined) done({ open: true, hung: false });
    }, options.openAfterMs ?? 1_000);
    const hangTimer = setTimeout(() => done({ open: false, hung: true }), options.hangMs ?? 15_000);
    stream.end(body);
  });
}
