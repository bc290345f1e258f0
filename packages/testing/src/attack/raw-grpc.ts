import type http2 from 'node:http2';

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
