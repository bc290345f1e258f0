import { createHmac, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hkdfExpandSha256 } from './hkdf-expand.js';

describe('hkdfExpandSha256', () => {
  it('matches RFC 5869 test case 1', () => {
    const prk = Buffer.from('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5', 'hex');
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
    expect(hkdfExpandSha256(prk, info, 42).toString('hex')).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  it('matches node full HKDF once Extract (HMAC(salt, ikm)) is applied first', () => {
    const ikm = Buffer.alloc(32, 9);
    const salt = Buffer.alloc(32, 3);
    const info = Buffer.from('shellwego secret keys v1');
    const prk = createHmac('sha256', salt).update(ikm).digest();
    for (const length of [1, 32, 33, 64]) {
      expect(hkdfExpandSha256(prk, info, length).equals(Buffer.from(hkdfSync('sha256', ikm, salt, info, length)))).toBe(true);
    }
    expect(() => hkdfExpandSha256(prk, info, 0)).toThrow(RangeError);
  });
});
