import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from '@connectrpc/connect';
import { errnoCode } from '../errors/errno.js';

// Raised by the client's own socket or HTTP/2 session, never sent by a server. connect-node maps
// some of them to ABORTED (a reset) and some to UNAVAILABLE (a refusal); either way the peer is
// gone or unreachable, which is not what a server's ABORTED status means.
const TRANSPORT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_DESTROYED',
  'ERR_HTTP2_INVALID_STREAM',
]);

/**
 * Whether a call failed because the connection failed (refused, reset, the server process died)
 * rather than because the server answered with a status.
 */
export function isConnectionFailure(error: ConnectError): boolean {
  let cause: unknown = error.cause;
  for (let depth = 0; cause instanceof Error && depth < 10; depth++) {
    const code = errnoCode(cause);
    if (code !== undefined && (TRANSPORT_CODES.has(code) || code.startsWith('ERR_HTTP2_'))) return true;
    cause = cause.cause;
  }
  return false;
}

/**
 * Every client call whose connection fails under it fails with UNAVAILABLE: connect-node reports a
 * server process that died mid-call as CANCELED ("http/2 stream closed with error code CANCEL"),
 * and a reset as ABORTED, which callers take for their own cancellation or a server's conflict and
 * do not retry. A call the caller cancelled itself stays CANCELED.
 */
export function connectionFailuresAsUnavailable(): Interceptor {
  return (next) => async (req) => {
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (error) {
      throw asUnavailable(error, req.signal);
    }
    if (!res.stream) return res;
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw asUnavailable(error, req.signal);
        }
      })(),
    };
  };
}

function asUnavailable(error: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return error;
  const connectError = ConnectError.from(error);
  const cut = connectError.code === Code.Canceled || (connectError.code !== Code.Unavailable && isConnectionFailure(connectError));
  if (!cut) return error;
  return new ConnectError(
    `the connection to the server failed during the call, which may or may not have taken effect (${connectError.rawMessage}); try again`,
    Code.Unavailable,
    undefined,
    undefined,
    connectError,
  );
}
