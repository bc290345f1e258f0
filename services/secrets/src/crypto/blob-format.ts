import { SecretDecryptError } from './secret-decrypt-error.js';

/*
 * Stored blob, format version 1 (all lengths in bytes):
 *
 *   2   magic "SW" (0x53 0x57)
 *   1   format version (1)
 *   1   KEK id length L (1..255)
 *   L   KEK id (ASCII)                      <- bytes 0..4+L are the header
 *   12  wrap nonce                            \
 *   32  wrapped data key                       } AES-256-GCM under the KEK, AAD = header
 *   16  wrap tag                              /
 *   16  binding check: HMAC-SHA256(binding key, binding)[0..16]
 *   12  value nonce                           \
 *   N   value ciphertext                       } AES-256-GCM under the value key, AAD = binding
 *   16  value tag                             /
 *
 * The value key and binding key are the two halves of HKDF-Expand-SHA256(
 * data key, "shellwego secret keys v1", 64). The binding check exists only to
 * tell "wrong row" apart from "corrupt" in error messages; it is keyed by the
 * per-write data key, so it reveals nothing and cannot be forged without it.
 * "binding" is encodeSecretBinding (secret-binding.ts): format version, scope
 * kind, app, name, version. The KEK id is authenticated by the wrap (it is in
 * the header), not by the value AAD, so a re-wrap can leave the value
 * ciphertext untouched; the value is tied to its data key by GCM itself.
 */

export const BLOB_MAGIC = Buffer.from([0x53, 0x57]);
export const FORMAT_VERSION = 1;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;
export const BINDING_CHECK_BYTES = 16;

const KEK_ID_PATTERN = /^[A-Za-z0-9._:-]{1,255}$/;
const FIXED_HEADER_BYTES = BLOB_MAGIC.length + 2;
const WRAPPED_KEY_BYTES = NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES;
/** Smallest possible blob: one-byte KEK id, empty value. */
export const MIN_BLOB_BYTES = FIXED_HEADER_BYTES + 1 + WRAPPED_KEY_BYTES + BINDING_CHECK_BYTES + NONCE_BYTES + TAG_BYTES;

/** Views into one blob (no copies). */
export interface BlobParts {
  /** Magic, version, KEK id: the AAD of the data key wrap. */
  readonly header: Buffer;
  readonly kekId: string;
  readonly wrapNonce: Buffer;
  readonly wrappedKey: Buffer;
  readonly wrapTag: Buffer;
  readonly bindingCheck: Buffer;
  readonly valueNonce: Buffer;
  readonly ciphertext: Buffer;
  readonly valueTag: Buffer;
}

/** Throws a TypeError for an id that cannot be stored in a blob header. */
export function assertStorableKekId(kekId: string): void {
  if (!KEK_ID_PATTERN.test(kekId)) {
    throw new TypeError(`master key id ${JSON.stringify(kekId)} cannot be stored; ids are 1-255 characters of [A-Za-z0-9._:-]`);
  }
}

export function blobHeader(kekId: string): Buffer {
  assertStorableKekId(kekId);
  const id = Buffer.from(kekId, 'ascii');
  return Buffer.concat([BLOB_MAGIC, Buffer.from([FORMAT_VERSION, id.length]), id]);
}

export function assembleBlob(parts: Omit<BlobParts, 'kekId'>): Buffer {
  return Buffer.concat([
    parts.header,
    parts.wrapNonce,
    parts.wrappedKey,
    parts.wrapTag,
    parts.bindingCheck,
    parts.valueNonce,
    parts.ciphertext,
    parts.valueTag,
  ]);
}

function corrupt(detail: string): SecretDecryptError {
  return new SecretDecryptError('corrupt', `corrupt blob: ${detail}`);
}

/** Splits a blob into its fields; throws SecretDecryptError 'corrupt' when the framing is wrong. */
export function parseBlob(blob: Uint8Array): BlobParts {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.length < MIN_BLOB_BYTES) {
    throw corrupt(`${buf.length} bytes is shorter than the smallest valid blob (${MIN_BLOB_BYTES} bytes); it was truncated`);
  }
  if (!buf.subarray(0, BLOB_MAGIC.length).equals(BLOB_MAGIC)) {
    throw corrupt('it does not start with the shellwego secret magic bytes');
  }
  const version = buf.readUInt8(BLOB_MAGIC.length);
  if (version !== FORMAT_VERSION) {
    throw corrupt(`format version ${version} is not one this build reads (${FORMAT_VERSION}); a newer shellwego may have written it, or the byte is damaged`);
  }
  const idLength = buf.readUInt8(BLOB_MAGIC.length + 1);
  const headerEnd = FIXED_HEADER_BYTES + idLength;
  if (idLength === 0 || buf.length < MIN_BLOB_BYTES - 1 + idLength) {
    throw corrupt(`the master key id length (${idLength}) does not fit the blob`);
  }
  const kekId = buf.toString('latin1', FIXED_HEADER_BYTES, headerEnd);
  if (!KEK_ID_PATTERN.test(kekId)) throw corrupt('the master key id holds characters no id has');
  let at = headerEnd;
  const take = (n: number): Buffer => {
    const part = buf.subarray(at, at + n);
    at += n;
    return part;
  };
  const header = buf.subarray(0, headerEnd);
  const wrapNonce = take(NONCE_BYTES);
  const wrappedKey = take(DATA_KEY_BYTES);
  const wrapTag = take(TAG_BYTES);
  const bindingCheck = take(BINDING_CHECK_BYTES);
  const valueNonce = take(NONCE_BYTES);
  const ciphertext = take(buf.length - at - TAG_BYTES);
  const valueTag = take(TAG_BYTES);
  return { header, kekId, wrapNonce, wrappedKey, wrapTag, bindingCheck, valueNonce, ciphertext, valueTag };
}

/** The KEK id a blob is wrapped under (e.g. to skip blobs a re-wrap already moved). */
export function blobKekId(blob: Uint8Array): string {
  return parseBlob(blob).kekId;
}
