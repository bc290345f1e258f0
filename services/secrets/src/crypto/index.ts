export { BLOB_MAGIC, blobKekId, FORMAT_VERSION, MIN_BLOB_BYTES } from './blob-format.js';
export { createDigestKey, DigestKey, openDigestKey, rewrapDigestKey } from './digest-key.js';
export type { EncryptionBudget } from './encryption-budget.js';
export {
  ChunkedEncryptionBudget,
  DEFAULT_KEK_ENCRYPTION_LIMIT,
  EncryptionLimitError,
  InMemoryEncryptionBudget,
} from './encryption-budget.js';
export type { SecretBinding } from './secret-binding.js';
export { describeSecretBinding, encodeSecretBinding } from './secret-binding.js';
export type { SecretDecryptReason } from './secret-decrypt-error.js';
export { SecretDecryptError } from './secret-decrypt-error.js';
export { openSecret, rewrapDataKey, sealSecret } from './secret-envelope.js';
