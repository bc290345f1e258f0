import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { kekIdFor } from '../kek/kek-id.js';
import { KekRing } from '../kek/kek-ring.js';
import type { LoadedKek } from '../kek/loaded-kek.js';
import { blobKekId, MIN_BLOB_BYTES, parseBlob } from './blob-format.js';
import { EncryptionLimitError, InMemoryEncryptionBudget } from './encryption-budget.js';
import type { SecretBinding } from './secret-binding.js';
import type { SecretDecryptReason } from './secret-decrypt-error.js';
import { SecretDecryptError } from './secret-decrypt-error.js';
import { openSecret, rewrapDataKey, sealSecret } from './secret-envelope.js';

function makeKek(version: number): LoadedKek {
  const key = createSecretKey(randomBytes(32));
  return { id: kekIdFor(version, key), key, createdAt: new Date() };
}

const k1 = makeKek(1);
const k2 = makeKek(2);
const ring = new KekRing([k1, k2]);
const CANARY = Buffer.from('canary-7f3e9a1c-value-XYZZY');
const row: SecretBinding = { scope: { kind: 'app', app: 'shop' }, name: 'DB_PASSWORD', version: 3 };

function decryptFailure(fn: () => unknown): SecretDecryptError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SecretDecryptError) return err;
    throw err;
  }
  throw new Error('expected decryption to fail');
}

function expectFailure(fn: () => unknown, reason: SecretDecryptReason, message?: RegExp): SecretDecryptError {
  const err = decryptFailure(fn);
  expect(err.reason).toBe(reason);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

async function seal(value: Uint8Array = CANARY, binding: SecretBinding = row, kek: LoadedKek = k2): Promise<Buffer> {
  return sealSecret(value, binding, kek, new InMemoryEncryptionBudget());
}

function flipBit(blob: Buffer, offset: number, bit = 0): Buffer {
  const copy = Buffer.from(blob);
  copy[offset] = (copy[offset] ?? 0) ^ (1 << bit);
  return copy;
}

describe('sealSecret / openSecret', () => {
  it('round-trips values of every size class, including empty and 64 KiB', async () => {
    for (const value of [Buffer.alloc(0), CANARY, randomBytes(64 * 1024)]) {
      const blob = await seal(value);
      expect(blob.length).toBe(MIN_BLOB_BYTES - 1 + k2.id.length + value.length);
      const opened = openSecret(blob, row, ring);
      expect(Buffer.from(opened.reveal()).equals(value)).toBe(true);
      opened.wipe();
    }
  });

  it('never stores the plaintext, and two seals of one value differ', async () => {
    const a = await seal();
    const b = await seal();
    expect(a.includes(CANARY)).toBe(false);
    expect(a.includes(CANARY.subarray(0, 8))).toBe(false);
    expect(a.equals(b)).toBe(false);
    expect(blobKekId(a)).toBe(k2.id);
  });

  it('refuses a blob moved to another name, scope, app or version', async () => {
    const blob = await seal();
    const elsewhere: SecretBinding[] = [
      { ...row, name: 'DB_PASSWORD2' },
      { ...row, scope: { kind: 'workspace' } },
      { ...row, scope: { kind: 'app', app: 'shop2' } },
      { ...row, version: 4 },
    ];
    for (const binding of elsewhere) {
      expectFailure(() => openSecret(blob, binding, ring), 'wrong-binding', /blob was written for a different scope, name or version/);
    }
  });

  it('keeps length-prefixed fields apart (no delimiter confusion)', async () => {
    const a: SecretBinding = { scope: { kind: 'app', app: 'a' }, name: 'B_C', version: 1 };
    const b: SecretBinding = { scope: { kind: 'app', app: 'a-b' }, name: 'C', version: 1 };
    const blob = await seal(CANARY, a);
    expectFailure(() => openSecret(blob, b, ring), 'wrong-binding');
    expect(Buffer.from(openSecret(blob, a, ring).reveal()).equals(CANARY)).toBe(true);
  });

  it('refuses a flipped bit anywhere, with the reason of the field hit', async () => {
    const blob = await seal(Buffer.from('short value'));
    const p = parseBlob(blob);
    const at = (field: Buffer): number => field.byteOffset - p.header.byteOffset;
    // Bit 7 of the id length makes it overrun the blob; bit 0 would shorten
    // the id to "k2-..." minus a character, reported as an unknown KEK id.
    const fields: Array<[string, number, number, SecretDecryptReason]> = [
      ['magic', 0, 0, 'corrupt'],
      ['format version', 2, 0, 'corrupt'],
      ['kek id length', 3, 7, 'corrupt'],
      ['kek id length', 3, 0, 'unknown-kek'],
      ['kek id', 4, 0, 'unknown-kek'],
      ['wrap nonce', at(p.wrapNonce), 0, 'auth-failed'],
      ['wrapped key', at(p.wrappedKey), 0, 'auth-failed'],
      ['wrap tag', at(p.wrapTag), 0, 'auth-failed'],
      ['binding check', at(p.bindingCheck), 0, 'wrong-binding'],
      ['value nonce', at(p.valueNonce), 0, 'auth-failed'],
      ['ciphertext', at(p.ciphertext), 0, 'auth-failed'],
      ['value tag', at(p.valueTag), 0, 'auth-failed'],
    ];
    for (const [field, offset, bit, reason] of fields) {
      const err = decryptFailure(() => openSecret(flipBit(blob, offset, bit), row, ring));
      expect({ field, reason: err.reason }).toEqual({ field, reason });
    }
    for (let offset = 0; offset < blob.length; offset++) {
      for (let bit = 0; bit < 8; bit++) decryptFailure(() => openSecret(flipBit(blob, offset, bit), row, ring));
    }
  });

  it('refuses every truncation and an appended byte', async () => {
    const blob = await seal();
    for (let length = 0; length < blob.length; length++) decryptFailure(() => openSecret(blob.subarray(0, length), row, ring));
    expectFailure(() => openSecret(blob.subarray(0, 20), row, ring), 'corrupt', /truncated/);
    expectFailure(() => openSecret(Buffer.concat([blob, Buffer.from([0])]), row, ring), 'auth-failed');
  });

  it('refuses a wrong KEK under the same id, and names an unknown KEK id', async () => {
    const blob = await seal(CANARY, row, k1);
    const impostor: LoadedKek = { ...makeKek(1), id: k1.id };
    expectFailure(() => openSecret(blob, row, new KekRing([impostor])), 'auth-failed', /authentication failed/);
    const err = expectFailure(() => openSecret(blob, row, new KekRing([k2])), 'unknown-kek', new RegExp(`unknown KEK id ${k1.id}`));
    expect(err.kekId).toBe(k1.id);
  });

  it('refuses a seal past the encryption limit and counts only KEK wraps', async () => {
    const budget = new InMemoryEncryptionBudget(2);
    await sealSecret(CANARY, row, k1, budget);
    await sealSecret(CANARY, row, k1, budget);
    expect(budget.used(k1.id)).toBe(2);
    await expect(sealSecret(CANARY, row, k1, budget)).rejects.toBeInstanceOf(EncryptionLimitError);
    await expect(sealSecret(CANARY, row, k1, budget)).rejects.toThrow(/rotate the master key/);
    expect(budget.used(k1.id)).toBe(2);
    await sealSecret(CANARY, row, k2, budget);
    expect(budget.used(k2.id)).toBe(1);
  });

  it('refuses bindings that cannot be encoded', async () => {
    await expect(seal(CANARY, { ...row, version: 0 })).rejects.toThrow(RangeError);
    await expect(seal(CANARY, { ...row, version: 2 ** 32 })).rejects.toThrow(RangeError);
    await expect(seal(CANARY, { ...row, name: 'A\ud800' })).rejects.toThrow(/well-formed/);
  });
});

describe('rewrapDataKey', () => {
  it('moves the data key to the new KEK and leaves the value ciphertext byte for byte', async () => {
    const blob = await seal(CANARY, row, k1);
    const budget = new InMemoryEncryptionBudget();
    const moved = await rewrapDataKey(blob, row, ring, k2, budget);
    expect(budget.used(k2.id)).toBe(1);
    expect(blobKekId(moved)).toBe(k2.id);
    const before = parseBlob(blob);
    const after = parseBlob(moved);
    for (const field of ['bindingCheck', 'valueNonce', 'ciphertext', 'valueTag'] as const) {
      expect(after[field].equals(before[field])).toBe(true);
    }
    expect(after.wrappedKey.equals(before.wrappedKey)).toBe(false);
    const opened = openSecret(moved, row, new KekRing([k2]));
    expect(Buffer.from(opened.reveal()).equals(CANARY)).toBe(true);
    expectFailure(() => openSecret(moved, row, new KekRing([k1])), 'unknown-kek');
  });

  it('returns a blob already under the target unchanged, spending nothing', async () => {
    const blob = await seal(CANARY, row, k2);
    const budget = new InMemoryEncryptionBudget();
    expect((await rewrapDataKey(blob, row, ring, k2, budget)).equals(blob)).toBe(true);
    expect(budget.used(k2.id)).toBe(0);
  });

  it('refuses to re-wrap a blob sitting in another row or with a damaged wrap', async () => {
    const blob = await seal(CANARY, row, k1);
    const budget = new InMemoryEncryptionBudget();
    await expect(rewrapDataKey(blob, { ...row, version: 2 }, ring, k2, budget)).rejects.toMatchObject({ reason: 'wrong-binding' });
    const p = parseBlob(blob);
    const damaged = flipBit(blob, p.wrapTag.byteOffset - p.header.byteOffset);
    await expect(rewrapDataKey(damaged, row, ring, k2, budget)).rejects.toMatchObject({ reason: 'auth-failed' });
  });
});
