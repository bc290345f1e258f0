import type { ConnectError } from '@connectrpc/connect';
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
