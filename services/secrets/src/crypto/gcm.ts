import type { KeyObject } from 'node:crypto';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { TAG_BYTES } from './blob-format.js';

export interface GcmSealed {
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

export function gcmEncrypt(key: KeyObject | Buffer, nonce: Buffer, aad: Buffer, plaintext: Uint8Array): GcmSealed {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/**
 * Decrypts and authenticates; returns undefined when the tag does not verify.
 * GCM hands out plaintext from update() before final() has checked the tag,
 * so on failure that unauthenticated output is zeroed before anyone sees it.
 * The returned buffer is never a slice of Buffer's shared pool.
 */
export function gcmDecrypt(key: KeyObject | Buffer, nonce: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer): Buffer | undefined {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = ownMemory(decipher.update(ciphertext));
  try {
    // GCM is a stream mode: update() returned every byte, final() only checks the tag.
    decipher.final();
  } catch {
    plaintext.fill(0);
    return undefined;
  }
  return plaintext;
}

/** A buffer backed by memory of its own; a pooled slice is copied and the slice zeroed. */
function ownMemory(buf: Buffer): Buffer {
  if (buf.byteOffset === 0 && buf.buffer.byteLength === buf.length) return buf;
  const own = Buffer.alloc(buf.length);
  buf.copy(own);
  buf.fill(0);
  return own;
}
