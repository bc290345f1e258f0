// Shorthands for the ConnectErrors GuestService answers with.
import { Code, ConnectError } from '@connectrpc/connect';

export const invalidArgument = (message: string): ConnectError => new ConnectError(message, Code.InvalidArgument);
export const notFound = (message: string): ConnectError => new ConnectError(message, Code.NotFound);
export const failedPrecondition = (message: string): ConnectError => new ConnectError(message, Code.FailedPrecondition);
export const internalError = (message: string): ConnectError => new ConnectError(message, Code.Internal);

/** The errno code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
