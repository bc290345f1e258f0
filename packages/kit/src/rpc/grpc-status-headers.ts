import type { OutgoingHttpHeaders } from 'node:http';
import type http2 from 'node:http2';

type NodeHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

// connect-es reports a request it cannot decode as INTERNAL; to the caller it
// is bad input, and shellwego's contract says INVALID_ARGUMENT for that (as
// connect-go does). A message flagged compressed without a grpc-encoding too:
// the gRPC spec says INTERNAL, but it is the client's mistake, and shellwego
// answers INTERNAL only for its own faults.
const undecodable = /^(parse(%20| )(binary|JSON)|received(%20| )compressed(%20| )envelope)/;
const internal = '13';
const invalidArgument = '3';
// Messages often quote what the caller sent (`name: "..." is not an app name`): a caller sending a
// long value would otherwise get it back in a header that HTTP/2 cannot carry (a 15 KB name reset
// the stream and the connection). The quote is enough to act on; the rest is cut.
const MAX_MESSAGE_CHARS = 1024;

/**
 * Percent-encodes a status message as the gRPC spec says: every byte of its
 * UTF-8 form outside 0x20-0x7E, and "%", becomes %XX. connect-es uses
 * encodeURIComponent, which also encodes ":" "/" ";" and others that
 * grpc-js then shows to users still encoded.
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function conform(headers: OutgoingHttpHeaders | undefined): void {
  const message = headers?.['grpc-message'];
  if (!headers || typeof message !== 'string') return;
  if (String(headers['grpc-status']) === internal && undecodable.test(message)) headers['grpc-status'] = invalidArgument;
  let decoded = message;
  try {
    decoded = decodeURIComponent(message);
  } catch {
    // Not percent-encoded after all; encode it as it stands.
  }
  headers['grpc-message'] = encodeGrpcMessage(bounded(decoded));
}

function bounded(message: string): string {
  if (message.length <= MAX_MESSAGE_CHARS) return message;
  // Cut on a code point, not inside a surrogate pair.
  const kept = Array.from(message.slice(0, MAX_MESSAGE_CHARS + 1))
    .slice(0, -1)
    .join('');
  return `${kept}… (${message.length - kept.length} more characters cut)`;
}

/**
 * Wraps a Node HTTP/2 handler so every gRPC status it writes (in headers for
 * trailers-only responses, else in trailers) uses spec encoding for
 * grpc-message, at most MAX_MESSAGE_CHARS of it, and undecodable requests
 * answer INVALID_ARGUMENT.
 */
export function conformGrpcStatus(handler: NodeHandler): NodeHandler {
  return (req, res) => {
    const addTrailers = res.addTrailers.bind(res);
    res.addTrailers = (trailers: OutgoingHttpHeaders) => {
      conform(trailers);
      addTrailers(trailers);
    };
    const writeHead = res.writeHead.bind(res) as (status: number, headers?: OutgoingHttpHeaders) => http2.Http2ServerResponse;
    res.writeHead = ((status: number, headers?: OutgoingHttpHeaders) => {
      conform(headers);
      return writeHead(status, headers);
    }) as typeof res.writeHead;
    handler(req, res);
  };
}
