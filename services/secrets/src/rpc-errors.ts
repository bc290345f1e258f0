import { Code, ConnectError } from '@connectrpc/connect';
import { sqlState } from '@shellwego/kit/db';
import { EncryptionLimitError, SecretDecryptError } from './crypto/index.js';
import { KekError } from './kek/index.js';

// Node's errors when a database cannot be reached, and SQLSTATE classes 08
// (connection exception) and 57P (operator intervention: shutdown, restart).
const UNREACHABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function databaseUnreachable(err: unknown): boolean {
  const state = sqlState(err);
  if (state !== undefined) return state.startsWith('08') || state.startsWith('57P');
  const code = errno(err);
  if (code !== undefined && UNREACHABLE_ERRNO.has(code)) return true;
  return err instanceof Error && /Connection terminated|timeout exceeded when trying to connect/i.test(err.message);
}

/**
 * The ConnectError a caller should see for a domain error. Messages of
 * these errors carry names, ids and sizes, never values. Anything unknown
 * stays as it is (connect answers INTERNAL without its message).
 */
export function toConnectError(err: unknown): unknown {
  if (err instanceof ConnectError) return err;
  if (err instanceof EncryptionLimitError) return new ConnectError(err.message, Code.FailedPrecondition);
  if (err instanceof KekError) return new ConnectError(`master key problem: ${err.message}`, Code.FailedPrecondition);
  if (err instanceof SecretDecryptError) return new ConnectError(`a stored secret cannot be decrypted: ${err.message}`, Code.DataLoss);
  if (databaseUnreachable(err)) return new ConnectError('the secrets database is unreachable; retry shortly', Code.Unavailable);
  return err;
}
