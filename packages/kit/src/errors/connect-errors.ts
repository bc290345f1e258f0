// The ConnectErrors services answer with, one helper per status code and one signature each.
import { Code, ConnectError } from '@connectrpc/connect';

/** INVALID_ARGUMENT listing every problem found, each naming its field (`name: required`). */
export function invalidArgument(problems: readonly string[] | string): ConnectError {
  return new ConnectError(typeof problems === 'string' ? problems : problems.join('; '), Code.InvalidArgument);
}

export function notFound(message: string): ConnectError {
  return new ConnectError(message, Code.NotFound);
}

export function failedPrecondition(message: string): ConnectError {
  return new ConnectError(message, Code.FailedPrecondition);
}

export function unavailable(message: string): ConnectError {
  return new ConnectError(message, Code.Unavailable);
}

export function resourceExhausted(message: string): ConnectError {
  return new ConnectError(message, Code.ResourceExhausted);
}

export function permissionDenied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

export function internalError(message: string): ConnectError {
  return new ConnectError(message, Code.Internal);
}
