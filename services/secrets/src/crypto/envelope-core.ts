import { createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import type { KekRing } from '../kek/kek-ring.js';
import type { LoadedKek } from '../kek/loaded-kek.js';
import type { BlobParts } from './blob-format.js';
import { assembleBlob, BINDING_CHECK_BYTES, blobHeader, DATA_KEY_BYTES, NONCE_BYTES, parseBlob } from './blob-format.js';
import type { EncryptionBudget } from './encryption-budget.js';
import { gcmDecrypt, gcmEncrypt } from './gcm.js';
import { hkdfExpandSha256 } from './hkdf-expand.js';
import { SecretDecryptError } from './secret-decrypt-error.js';

// Internal engine shared by secret values and the digest key: callers pass
// the encoded binding (the AAD) and a description of it for messages.

const HKDF_INFO = Buffer.from('shellwego secret keys v1');

interface DerivedKeys {
  readonly valueKey: Buffer;
  readonly bindingKey: Buffer;
  wipe(): void;
}

function deriveKeys(dataKey: Buffer): DerivedKeys {
  const okm = hkdfExpandSha256(dataKey, HKDF_INFO, 2 * DATA_KEY_BYTES);
  return {
    valueKey: okm.subarray(0, DATA_KEY_BYTES),
    bindingKey: okm.subarray(DATA_KEY_BYTES),
    wipe: () => okm.fill(0),
  };
}

function bindingCheck(bindingKey: Buffer, binding: Buffer): Buffer {
  return createHmac('sha256', bindingKey).update(binding).digest().subarray(0, BINDING_CHECK_BYTES);
}

function randomNonce(): Buffer {
  return randomFillSync(Buffer.alloc(NONCE_BYTES));
}

function wrapDataKey(dataKey: Buffer, kek: LoadedKek): Pick<BlobParts, 'header' | 'wrapNonce' | 'wrappedKey' | 'wrapTag'> {
  const header = blobHeader(kek.id);
  const wrapNonce = randomNonce();
  const sealed = gcmEncrypt(kek.key, wrapNonce, header, dataKey);
  return { header, wrapNonce, wrappedKey: sealed.ciphertext, wrapTag: sealed.tag };
}

/** Unwraps the data key; the caller wipes the result. */
function unwrapDataKey(parts: BlobParts, ring: KekRing): Buffer {
  const kek = ring.get(parts.kekId);
  if (kek === undefined) {
    throw new SecretDecryptError(
      'unknown-kek',
      `unknown KEK id ${parts.kekId}: this process holds master keys ${ring.ids.join(', ') || '(none)'}; load the missing master key, or reload if another replica just rotated`,
      parts.kekId,
    );
  }
  const dataKey = gcmDecrypt(kek.key, parts.wrapNonce, parts.header, parts.wrappedKey, parts.wrapTag);
  if (dataKey === undefined) {
    throw new SecretDecryptError(
      'auth-failed',
      `authentication failed: the data key does not verify under master key ${parts.kekId}; the blob is damaged or the key file holds other bytes than when it was written`,
    );
  }
  return dataKey;
}

/** Unwraps the data key and derives its keys (wiping the data key), then checks the binding; the caller wipes the result. */
function unwrapKeys(parts: BlobParts, binding: Buffer, bindingLabel: string, ring: KekRing): DerivedKeys {
  const dataKey = unwrapDataKey(parts, ring);
  const keys = deriveKeys(dataKey);
  dataKey.fill(0);
  try {
    checkBinding(keys, parts, binding, bindingLabel);
  } catch (err) {
    keys.wipe();
    throw err;
  }
  return keys;
}

function checkBinding(keys: DerivedKeys, parts: BlobParts, binding: Buffer, bindingLabel: string): void {
  if (!timingSafeEqual(bindingCheck(keys.bindingKey, binding), parts.bindingCheck)) {
    throw new SecretDecryptError(
      'wrong-binding',
      `blob was written for a different scope, name or version than ${bindingLabel}; it was copied from another row`,
    );
  }
}

export async function sealBytes(value: Uint8Array, binding: Buffer, kek: LoadedKek, budget: EncryptionBudget): Promise<Buffer> {
  blobHeader(kek.id);
  await budget.reserve(kek.id, 1);
  const dataKey = randomFillSync(Buffer.alloc(DATA_KEY_BYTES));
  const keys = deriveKeys(dataKey);
  try {
    const wrap = wrapDataKey(dataKey, kek);
    const valueNonce = randomNonce();
    const sealed = gcmEncrypt(keys.valueKey, valueNonce, binding, value);
    return assembleBlob({
      ...wrap,
      bindingCheck: bindingCheck(keys.bindingKey, binding),
      valueNonce,
      ciphertext: sealed.ciphertext,
      valueTag: sealed.tag,
    });
  } finally {
    keys.wipe();
    dataKey.fill(0);
  }
}

/** Returns the plaintext in a buffer of its own (the caller owns and wipes it). */
export function openBytes(blob: Uint8Array, binding: Buffer, bindingLabel: string, ring: KekRing): Buffer {
  const parts = parseBlob(blob);
  const keys = unwrapKeys(parts, binding, bindingLabel, ring);
  try {
    const plaintext = gcmDecrypt(keys.valueKey, parts.valueNonce, binding, parts.ciphertext, parts.valueTag);
    if (plaintext === undefined) {
      throw new SecretDecryptError(
        'auth-failed',
        `authentication failed: the value of ${bindingLabel} does not verify; its nonce, ciphertext or tag is damaged or truncated`,
      );
    }
    return plaintext;
  } finally {
    keys.wipe();
  }
}

/**
 * Moves the data key to `toKek`. Only the data key is decrypted; the value
 * ciphertext is copied as-is, so the plaintext value never exists here. The
 * binding is checked so a blob sitting in the wrong row is reported, not
 * re-wrapped. A blob already under `toKek` is returned unchanged (a copy),
 * without spending an encryption.
 */
export async function rewrapBytes(
  blob: Uint8Array,
  binding: Buffer,
  bindingLabel: string,
  fromRing: KekRing,
  toKek: LoadedKek,
  budget: EncryptionBudget,
): Promise<Buffer> {
  const parts = parseBlob(blob);
  const moving = parts.kekId !== toKek.id;
  if (moving) {
    blobHeader(toKek.id);
    // Reserved before the data key is in memory, so it never waits on the database.
    await budget.reserve(toKek.id, 1);
  }
  const dataKey = unwrapDataKey(parts, fromRing);
  try {
    const keys = deriveKeys(dataKey);
    try {
      checkBinding(keys, parts, binding, bindingLabel);
    } finally {
      keys.wipe();
    }
    return moving ? assembleBlob({ ...parts, ...wrapDataKey(dataKey, toKek) }) : Buffer.from(blob);
  } finally {
    dataKey.fill(0);
  }
}
