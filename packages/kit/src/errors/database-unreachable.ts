// Whether a database call failed because the database cannot be reached (so retrying later may
// work), the same way for pg and PGlite: the caller answers UNAVAILABLE instead of INTERNAL.
import { sqlState } from '../db/errors.js';
import { errnoCode, failedSyscall } from './errno.js';

// Node's errors when a server cannot be reached or the connection broke.
const UNREACHABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

// pg's and pg-pool's own errors for a lost, closed or ending connection, and PGlite's once closed.
const UNREACHABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Cannot use a pool after calling end on the pool|Client was closed and is not queryable|Client has encountered a connection error|PGlite is clos(ed|ing)/i;

/**
 * SQLSTATE class 08 (connection exception) and 57P (operator intervention: admin or crash
 * shutdown, cannot connect now), Node's connection errors (a Unix socket that is gone fails
 * connect with ENOENT), and the drivers' closed-connection errors, anywhere in the cause chain.
 */
export function databaseUnreachable(err: unknown): boolean {
  const state = sqlState(err);
  if (state !== undefined) return state.startsWith('08') || state.startsWith('57P');
  let current: unknown = err;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const code = errnoCode(current);
    if (code !== undefined && (UNREACHABLE_ERRNO.has(code) || failedSyscall(current) === 'connect')) return true;
    if (current instanceof Error && UNREACHABLE_MESSAGE.test(current.message)) return true;
    // Node's happy-eyeballs connect reports each address's failure in one AggregateError.
    if (current instanceof AggregateError && current.errors.some((inner) => databaseUnreachable(inner))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
