/**
 * What kind of failure, so the RPC layer (api/rpc-errors.ts) can answer with the status code the
 * contract promises: each kind is the gRPC code of the same name.
 */
export type SchedulerErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'failed-precondition'
  | 'permission-denied'
  | 'unavailable'
  | 'aborted'
  | 'resource-exhausted';

/** A request the scheduler refused or cannot serve now; the message names the field, id or reason. */
export class SchedulerError extends Error {
  constructor(
    readonly kind: SchedulerErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SchedulerError';
  }
}
