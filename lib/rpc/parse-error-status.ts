import type http2 from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';

type NodeHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

// connect-es reports a request it cannot decode as INTERNAL; to the caller it
// is bad input, and shellwego's contract says INVALID_ARGUMENT for that (as
// connect-go does). The message stays as connect wrote it.
const undecodable = /^parse(%20| )(binary|JSON)/;
const internal = '13';
const invalidArgument = '3';

function remap(headers: OutgoingHttpHeaders | undefined): void {
  if (!headers) return;
  const message = headers['grpc-message'];
  if (String(headers['grpc-status']) === internal && typeof message === 'string' && undecodable.test(message)) {
    headers['grpc-status'] = invalidArgument;
  }
}

/** Wraps a Node HTTP/2 handler so undecodable requests answer INVALID_ARGUMENT. */
export function undecodableAsInvalidArgument(handler: NodeHandler): NodeHandler {
  return (req, res) => {
    const addTrailers = res.addTrailers.bind(res);
    res.addTrailers = (trailers: OutgoingHttpHeaders) => {
      remap(trailers);
      addTrailers(trailers);
    };
    const writeHead = res.writeHead.bind(res) as (status: number, headers?: OutgoingHttpHeaders) => http2.Http2ServerResponse;
    res.writeHead = ((status: number, headers?: OutgoingHttpHeaders) => {
      remap(headers);
      return writeHead(status, headers);
    }) as typeof res.writeHead;
    handler(req, res);
  };
}
