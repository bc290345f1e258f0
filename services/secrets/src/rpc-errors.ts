import { Code, ConnectError } from '@connectrpc/connect';
import { databaseUnreachable } from '@shellwego/kit/errors';
import { EncryptionLimitError, SecretDecryptError } from './crypto/index.js';
import { KekError } from './kek/index.js';

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
