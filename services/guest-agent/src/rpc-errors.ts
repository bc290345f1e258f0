// GuestService's boundary: the status code a caller sees for each domain error.
import type { ConnectError } from '@connectrpc/connect';
import { failedPrecondition, internalError, invalidArgument, notFound } from '@shellwego/kit/errors';
import { WorkloadError, type WorkloadErrorKind } from './workload-error.js';

const ANSWERS: Record<WorkloadErrorKind, (message: string) => ConnectError> = {
  'invalid-argument': invalidArgument,
  'not-found': notFound,
  'failed-precondition': failedPrecondition,
  internal: internalError,
};

/** The ConnectError for a WorkloadError; anything else stays as it is (connect answers INTERNAL). */
export function toConnectError(err: unknown): unknown {
  return err instanceof WorkloadError ? ANSWERS[err.kind](err.message) : err;
}
