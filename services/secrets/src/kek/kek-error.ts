/** Why a master key (KEK) could not be used. */
export type KekErrorCode = 'missing' | 'unreadable' | 'not-a-file' | 'wrong-size' | 'bad-permissions' | 'exists' | 'orphaned' | 'no-key';

/**
 * A master key problem the operator must fix. The message says what is wrong
 * and the command or step that fixes it; it never contains key material.
 */
export class KekError extends Error {
  override readonly name = 'KekError';
  readonly code: KekErrorCode;

  constructor(code: KekErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
