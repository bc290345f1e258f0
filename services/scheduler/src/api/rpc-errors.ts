import { Code, ConnectError } from '@connectrpc/connect';

/** INVALID_ARGUMENT listing every problem found, each already naming its field. */
export function invalidArgument(problems: readonly string[]): ConnectError {
  return new ConnectError(problems.join('; '), Code.InvalidArgument);
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
