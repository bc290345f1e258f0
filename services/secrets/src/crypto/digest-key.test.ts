import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { kekIdFor } from '../kek/kek-id.js';
import { KekRing } from '../kek/kek-ring.js';
import type { LoadedKek } from '../kek/loaded-kek.js';
import { blobKekId } from './blob-format.js';
import { createDigestKey, type DigestKey, openDigestKey, rewrapDigestKey } from './digest-key.js';
import { InMemoryEncryptionBudget } from './encryption-budget.js';
import { openSecret, sealSecret } from './secret-envelope.js';

function makeKek(version: number): LoadedKek {
  const key = createSecretKey(randomBytes(32));
  return { id: kekIdFor(version, key), key, createdAt: new Date() };
}

const k1 = makeKek(1);
const k2 = makeKek(2);
const ring = new KekRing([k1, k2]);
const value = Buffer.from('hunter2');
const workspace = { kind: 'workspace' } as const;
/** The digest of DB_PASSWORD in the workspace holding `v`. */
const secretDigest = (v: Uint8Array, key: DigestKey) => key.digest(workspace, 'DB_PASSWORD', v);

describe('digest key', () => {
  it('gives a keyed HMAC-SHA256 that changes with the value and with the key', async () => {
    const a = await createDigestKey(k1, new InMemoryEncryptionBudget());
    const b = await createDigestKey(k1, new InMemoryEncryptionBudget());
    const d = secretDigest(value, a.key);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(secretDigest(Buffer.from('hunter2'), a.key)).toBe(d);
    expect(secretDigest(Buffer.from('hunter3'), a.key)).not.toBe(d);
    expect(secretDigest(value, b.key)).not.toBe(d);
    expect(a.sealed.includes(Buffer.from(d, 'hex').subarray(0, 8))).toBe(false);
  });

  it('differs between secrets holding the same value: scope and name are keyed in', async () => {
    const { key } = await createDigestKey(k1, new InMemoryEncryptionBudget());
    const digests = [
      key.digest(workspace, 'DB_PASSWORD', value),
      key.digest(workspace, 'API_TOKEN', value),
      key.digest({ kind: 'app', app: 'shop' }, 'DB_PASSWORD', value),
      key.digest({ kind: 'app', app: 'shop2' }, 'DB_PASSWORD', value),
      // Length prefixes: moving bytes between app and name gives another subject.
      key.digest({ kind: 'app', app: 'shopD' }, 'B_PASSWORD', value),
    ];
    expect(new Set(digests).size).toBe(digests.length);
    expect(key.digest(workspace, 'DB_PASSWORD', Buffer.from('hunter2'))).toBe(digests[0]);
  });

  it('survives persistence and master key rotation unchanged', async () => {
    const budget = new InMemoryEncryptionBudget();
    const { key, sealed } = await createDigestKey(k1, budget);
    const before = secretDigest(value, key);
    expect(secretDigest(value, openDigestKey(sealed, ring))).toBe(before);
    const moved = await rewrapDigestKey(sealed, ring, k2, budget);
    expect(blobKekId(moved)).toBe(k2.id);
    expect(secretDigest(value, openDigestKey(moved, new KekRing([k2])))).toBe(before);
    expect([budget.used(k1.id), budget.used(k2.id)]).toEqual([1, 1]);
  });

  it('cannot be confused with a secret row, either way', async () => {
    const budget = new InMemoryEncryptionBudget();
    const { sealed } = await createDigestKey(k1, budget);
    const row = { scope: { kind: 'workspace' } as const, name: 'digest-key', version: 1 };
    expect(() => openSecret(sealed, row, ring)).toThrow(/different scope, name or version/);
    const secret = await sealSecret(randomBytes(32), row, k1, budget);
    expect(() => openDigestKey(secret, ring)).toThrow(/different scope, name or version/);
  });

  it('stops working once wiped', async () => {
    const { key } = await createDigestKey(k1, new InMemoryEncryptionBudget());
    const before = secretDigest(value, key);
    key.wipe();
    expect(secretDigest(value, key)).not.toBe(before);
  });
});
