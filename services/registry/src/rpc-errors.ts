import { Code, ConnectError } from '@connectrpc/connect';
import { databaseUnreachable } from '@shellwego/kit/errors';
import { GrantError } from '@shellwego/kit/grant';
import { InvalidReferenceError } from './image-reference.js';
import { ImageFormatError, PlatformNotFoundError } from './oci/errors.js';
import { type RemoteErrorKind, RemoteRegistryError } from './pull/remote-error.js';
import { LayerRejectedError, RootfsBuildError } from './rootfs/errors.js';
import { RootfsRequestError } from './rootfs-stream.js';
import { TooLargeError } from './size-limit.js';
import { DigestMismatchError, InvalidDigestError, SizeMismatchError } from './store/errors.js';

/** Which RPC failed: a digest mismatch in an uploaded archive is bad input, from a remote it is data loss. */
export type Operation = 'import' | 'pull' | 'other';

const REMOTE_CODES: Record<RemoteErrorKind, Code> = {
  'not-found': Code.NotFound,
  unauthenticated: Code.Unauthenticated,
  denied: Code.PermissionDenied,
  unavailable: Code.Unavailable,
  invalid: Code.InvalidArgument,
  corrupt: Code.DataLoss,
};

/**
 * The ConnectError a caller should see for a domain error. Messages name
 * digests, paths inside images and hosts, never credentials. Anything
 * unknown stays as it is (connect answers INTERNAL without its message).
 */
export function toConnectError(err: unknown, operation: Operation): unknown {
  if (err instanceof ConnectError) return err;
  if (err instanceof GrantError) return new ConnectError(`grant refused: ${err.message}`, Code.PermissionDenied);
  if (err instanceof InvalidReferenceError || err instanceof InvalidDigestError) return new ConnectError(err.message, Code.InvalidArgument);
  if (err instanceof TooLargeError) return new ConnectError(err.message, Code.ResourceExhausted);
  if (err instanceof LayerRejectedError) return new ConnectError(`the image was rejected: ${err.message}`, Code.InvalidArgument);
  if (err instanceof ImageFormatError) return new ConnectError(`not a usable image: ${err.message}`, Code.InvalidArgument);
  if (err instanceof PlatformNotFoundError) return new ConnectError(err.message, operation === 'pull' ? Code.NotFound : Code.InvalidArgument);
  if (err instanceof DigestMismatchError || err instanceof SizeMismatchError) {
    return new ConnectError(`corrupt content: ${err.message}`, operation === 'import' ? Code.InvalidArgument : Code.DataLoss);
  }
  if (err instanceof RemoteRegistryError) return new ConnectError(err.message, REMOTE_CODES[err.kind]);
  if (err instanceof RootfsRequestError) {
    const code = err.kind === 'invalid' ? Code.InvalidArgument : err.kind === 'not-found' ? Code.NotFound : Code.OutOfRange;
    return new ConnectError(err.message, code);
  }
  if (err instanceof RootfsBuildError) return new ConnectError(`building the root filesystem failed: ${err.message}`, Code.Internal);
  if ((err as Error | undefined)?.name === 'AbortError') return new ConnectError('the call was cancelled', Code.Canceled);
  if (databaseUnreachable(err)) return new ConnectError('the registry database is unreachable; retry shortly', Code.Unavailable);
  return err;
}
