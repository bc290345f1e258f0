// The scheduler's boundary: the status code a caller sees for each domain error.
import { Code, ConnectError } from '@connectrpc/connect';
import { SchedulerError, type SchedulerErrorKind } from '../model/scheduler-error.js';

const CODES: Record<SchedulerErrorKind, Code> = {
  'invalid-argument': Code.InvalidArgument,
  'not-found': Code.NotFound,
  'failed-precondition': Code.FailedPrecondition,
  'permission-denied': Code.PermissionDenied,
  unavailable: Code.Unavailable,
  aborted: Code.Aborted,
  'resource-exhausted': Code.ResourceExhausted,
};

/** The ConnectError for a SchedulerError; anything else stays as it is (connect answers INTERNAL). */
export function toConnectError(err: unknown): unknown {
  return err instanceof SchedulerError ? new ConnectError(err.message, CODES[err.kind]) : err;
}
