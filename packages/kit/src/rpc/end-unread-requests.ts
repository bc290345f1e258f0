import http2 from 'node:http2';

type NodeHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/**
 * When the server answers before reading the whole request (an oversize
 * message, a refused caller), the client may still be blocked sending it and
 * the stream never closes. Shortly after the response is fully written
 * (giving the client time to read the trailers first), resetting the stream
 * with NO_ERROR (RFC 9113 section 8.1) frees both sides, so such a call
 * cannot hold up a graceful drain or pin memory.
 */
const resetDelayMs = 500;

export function endUnreadRequests(handler: NodeHandler): NodeHandler {
  return (req, res) => {
    const stream = req.stream;
    stream.once('finish', () => {
      if (stream.readableEnded) return;
      setTimeout(() => {
        if (stream.readableEnded || stream.destroyed) return;
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
        // The unread request data would otherwise keep the stream alive.
        stream.destroy();
      }, resetDelayMs).unref();
    });
    handler(req, res);
  };
}
