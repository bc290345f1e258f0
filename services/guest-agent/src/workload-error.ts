/** What kind of failure, so GuestService can answer with the status code its contract promises. */
export type WorkloadErrorKind = 'invalid-argument' | 'not-found' | 'failed-precondition' | 'internal';

/** A Run, Signal or InjectSecrets the supervisor refused or could not carry out; the message says why. */
export class WorkloadError extends Error {
  constructor(
    readonly kind: WorkloadErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'WorkloadError';
  }
}
