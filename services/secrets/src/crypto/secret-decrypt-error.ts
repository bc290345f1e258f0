/** Why a blob could not be opened. */
export type SecretDecryptReason = 'corrupt' | 'unknown-kek' | 'auth-failed' | 'wrong-binding';

/**
 * A stored blob could not be decrypted. No plaintext, partial or whole, is
 * ever returned alongside it; the message carries no key or value bytes.
 */
export class SecretDecryptError extends Error {
  override readonly name = 'SecretDecryptError';
  readonly reason: SecretDecryptReason;
  /** For 'unknown-kek': the id the blob names, so the caller can reload its key ring and retry. */
  readonly kekId: string | undefined;

  constructor(reason: SecretDecryptReason, message: string, kekId?: string) {
    super(message);
    this.reason = reason;
    this.kekId = kekId;
  }
}
