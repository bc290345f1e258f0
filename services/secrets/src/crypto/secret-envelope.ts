import { SecretBytes } from '@shellwego/kit/secret-bytes';
import type { KekRing } from '../kek/kek-ring.js';
import type { LoadedKek } from '../kek/loaded-kek.js';
import type { EncryptionBudget } from './encryption-budget.js';
import { openBytes, rewrapBytes, sealBytes } from './envelope-core.js';
import type { SecretBinding } from './secret-binding.js';
import { describeSecretBinding, encodeSecretBinding } from './secret-binding.js';

/**
 * Encrypts one secret version under a fresh data key wrapped by `kek`
 * (see blob-format.ts). Reserves one encryption under `kek` from `budget`
 * first; rejects with EncryptionLimitError when the key is used up. The
 * caller keeps ownership of `value` (and wipes it).
 */
export function sealSecret(value: Uint8Array, binding: SecretBinding, kek: LoadedKek, budget: EncryptionBudget): Promise<Buffer> {
  return sealBytes(value, encodeSecretBinding(binding), kek, budget);
}

/**
 * Decrypts a blob stored for `binding`. Throws SecretDecryptError (reason
 * 'corrupt' | 'unknown-kek' | 'auth-failed' | 'wrong-binding') and never
 * returns partial plaintext. The caller wipes the result once delivered.
 */
export function openSecret(blob: Uint8Array, binding: SecretBinding, ring: KekRing): SecretBytes {
  return SecretBytes.adopt(openBytes(blob, encodeSecretBinding(binding), describeSecretBinding(binding), ring));
}

/**
 * Re-wraps the data key of a stored blob under `toKek` for the rotation job;
 * the value ciphertext is kept byte for byte and the value is never
 * decrypted. `fromRing` must hold the blob's current KEK. Returns the blob
 * unchanged when it is already under `toKek`.
 */
export function rewrapDataKey(blob: Uint8Array, binding: SecretBinding, fromRing: KekRing, toKek: LoadedKek, budget: EncryptionBudget): Promise<Buffer> {
  return rewrapBytes(blob, encodeSecretBinding(binding), describeSecretBinding(binding), fromRing, toKek, budget);
}
