/**
 * What went wrong, so the RPC layer can pick a status code:
 * invalid-argument -> INVALID_ARGUMENT, not-found -> NOT_FOUND,
 * already-exists -> ALREADY_EXISTS.
 */
export type PlacementErrorCode = 'invalid-argument' | 'not-found' | 'already-exists';

/** A caller error from the placement engine; the message names the field or id. */
export class PlacementError extends Error {
  readonly code: PlacementErrorCode;

  constructor(code: PlacementErrorCode, message: string) {
    super(message);
    this.name = 'PlacementError';
    this.code = code;
  }
}
