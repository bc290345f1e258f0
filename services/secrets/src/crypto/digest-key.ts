import { createHmac, randomFillSync } from 'node:crypto';
import type { KekRing } from '../kek/kek-ring.js';
import type { LoadedKek } from '../kek/loaded-kek.js';
import type { SecretScopeRef } from '../validation/secret-scope.js';
import type { EncryptionBudget } from './encryption-budget.js';
import { openBytes, rewrapBytes, sealBytes } from './envelope-core.js';
import { encodeDigestKeyBinding, encodeSecretSubject } from './secret-binding.js';
import { SecretDecryptError } from './secret-decrypt-error.js';

/*
 * The key behind ListSecrets digests. It is 32 random bytes created once and
 * stored sealed like a secret value (its own binding, so it cannot be mixed
 * up with a secret row). Deriving it from a master key instead would change
 * every digest at rotation, or pin the first master key forever; a sealed
 * random key survives rotation by being re-wrapped like any data key.
 *
 * What the service persists: one row holding the sealed digest key, created
 * with insert-if-absent at start-up (re-read after a lost race), included in
 * the KEK ids the start-up check must cover, and re-wrapped by rotation.
 */

const DIGEST_KEY_BYTES = 32;
const LABEL = 'the digest key';

/** The HMAC key for value digests, held in memory. */
export class DigestKey {
  readonly #key: Buffer;

  /** Takes ownership of `key` (32 bytes). */
  constructor(key: Buffer) {
    if (key.length !== DIGEST_KEY_BYTES) throw new RangeError(`a digest key is ${DIGEST_KEY_BYTES} bytes`);
    this.#key = key;
  }

  /**
   * Hex HMAC-SHA256 of the secret's scope and name, then its value: changes with the value,
   * useless for guessing it without the key, and different for two secrets holding the same
   * value (so a digest says nothing about any other secret).
   */
  digest(scope: SecretScopeRef, name: string, value: Uint8Array): string {
    return createHmac('sha256', this.#key).update(encodeSecretSubject(scope, name)).update(value).digest('hex');
  }

  wipe(): void {
    this.#key.fill(0);
  }
}

/** A new random digest key and its sealed form to persist. */
export async function createDigestKey(kek: LoadedKek, budget: EncryptionBudget): Promise<{ key: DigestKey; sealed: Buffer }> {
  const material = randomFillSync(Buffer.alloc(DIGEST_KEY_BYTES));
  try {
    const sealed = await sealBytes(material, encodeDigestKeyBinding(), kek, budget);
    return { key: new DigestKey(material), sealed };
  } catch (err) {
    material.fill(0);
    throw err;
  }
}

/** Opens the persisted digest key; throws SecretDecryptError like openSecret. */
export function openDigestKey(sealed: Uint8Array, ring: KekRing): DigestKey {
  const material = openBytes(sealed, encodeDigestKeyBinding(), LABEL, ring);
  if (material.length !== DIGEST_KEY_BYTES) {
    material.fill(0);
    throw new SecretDecryptError('corrupt', `corrupt blob: the stored digest key is ${material.length} bytes, not ${DIGEST_KEY_BYTES}`);
  }
  return new DigestKey(material);
}

/** Re-wraps the persisted digest key under `toKek` during rotation. */
export function rewrapDigestKey(sealed: Uint8Array, fromRing: KekRing, toKek: LoadedKek, budget: EncryptionBudget): Promise<Buffer> {
  return rewrapBytes(sealed, encodeDigestKeyBinding(), LABEL, fromRing, toKek, budget);
}
