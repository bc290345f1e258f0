import type http2 from 'node:http2';
import type { ConnectError } from '@connectrpc/connect';
import { encodeEnvelope } from '@connectrpc/connect/protocol';
import { codeToHttpStatus, codeToString, contentTypeStreamRegExp } from '@connectrpc/connect/protocol-connect';
import { encodeGrpcMessage } from './grpc-status-headers.js';

const grpcContentType = /^application\/grpc(-web(-text)?)?([+;]|$)/i;
// Connect's end-of-stream envelope flag.
const endStreamFlag = 0b00000010;

/**
 * Answers a call with an error without reading its request body, in the protocol the
 * client speaks: gRPC and gRPC-Web get a trailers-only response (the status in the
 * headers, end of stream), Connect streams an end-stream message, Connect unary (and
 * anything else) an HTTP error status with the JSON error body.
 */
export function answerWithError(stream: http2.ServerHttp2Stream, contentType: string, error: ConnectError): void {
  if (stream.destroyed || stream.headersSent) return;
  if (grpcContentType.test(contentType)) {
    stream.respond(
      { ':status': 200, 'content-type': contentType, 'grpc-status': String(error.code), 'grpc-message': encodeGrpcMessage(error.rawMessage) },
      { endStream: true },
    );
    return;
  }
  const json = { code: codeToString(error.code), message: error.rawMessage };
  if (contentTypeStreamRegExp.test(contentType)) {
    stream.respond({ ':status': 200, 'content-type': contentType });
    stream.end(encodeEnvelope(endStreamFlag, Buffer.from(JSON.stringify({ error: json }))));
    return;
  }
  stream.respond({ ':status': codeToHttpStatus(error.code), 'content-type': 'application/json' });
  stream.end(JSON.stringify(json));
}
