import { createHmac } from 'node:crypto';

const HASH_BYTES = 32;

/**
 * HKDF-Expand with SHA-256 (RFC 5869, section 2.3). The input is a fresh
 * random key, so the Extract step adds nothing (RFC 5869, section 3.3), and
 * skipping it halves the cost of node's hkdfSync on the read path. The
 * caller wipes the result.
 */
export function hkdfExpandSha256(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_BYTES) throw new RangeError(`HKDF-Expand length ${length} is out of range`);
  const out = Buffer.alloc(Math.ceil(length / HASH_BYTES) * HASH_BYTES);
  let previous = Buffer.alloc(0);
  for (let i = 0; i * HASH_BYTES < length; i++) {
    const block = createHmac('sha256', prk)
      .update(previous)
      .update(info)
      .update(Uint8Array.of(i + 1))
      .digest();
    block.copy(out, i * HASH_BYTES);
    previous.fill(0);
    previous = block;
  }
  previous.fill(0);
  if (out.length === length) return out;
  const trimmed = Buffer.alloc(length);
  out.copy(trimmed, 0, 0, length);
  out.fill(0);
  return trimmed;
}
