/** How a remote registry failed, which decides the status code the caller gets. */
export type RemoteErrorKind = 'not-found' | 'unauthenticated' | 'denied' | 'unavailable' | 'invalid' | 'corrupt';

/** A remote registry refused, failed or could not be reached. Messages never carry credentials. */
export class RemoteRegistryError extends Error {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RemoteRegistryError';
  }
}
