import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KekError } from './kek-error.js';
import { kekIdFor, kekIdVersion } from './kek-id.js';
import { KekRing } from './kek-ring.js';
import type { LoadedKek } from './loaded-kek.js';

function makeKek(version: number): LoadedKek {
  const key = createSecretKey(randomBytes(32));
  return { id: kekIdFor(version, key), key, createdAt: new Date() };
}

describe('KekRing', () => {
  it('treats the newest key as current and keeps older ones readable', () => {
    const k1 = makeKek(1);
    const k2 = makeKek(2);
    const ring = new KekRing([k1]).with(k2);
    expect(ring.current()).toBe(k2);
    expect(ring.get(k1.id)).toBe(k1);
    expect(ring.ids).toEqual([k1.id, k2.id]);
    expect(() => ring.with(k1)).toThrow(/appears twice/);
    expect(() => new KekRing([]).current()).toThrow(KekError);
  });

  it('derives ids from version and key material', () => {
    const key = createSecretKey(Buffer.alloc(32, 7));
    expect(kekIdFor(4, key)).toBe(kekIdFor(4, createSecretKey(Buffer.alloc(32, 7))));
    expect(kekIdFor(4, key)).not.toBe(kekIdFor(4, createSecretKey(Buffer.alloc(32, 8))));
    expect(kekIdVersion(kekIdFor(12, key))).toBe(12);
    expect(kekIdVersion('k0-00000000')).toBeUndefined();
    expect(kekIdVersion('kms-key-7')).toBeUndefined();
  });
});
