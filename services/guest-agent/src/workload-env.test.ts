import { SecretBytes } from '@shellwego/kit/secret-bytes';
import { describe, expect, it } from 'vitest';
import { childEnvironment } from './workload-env.js';

// Node's shared allocation pool: small Buffers (Buffer.from of a Uint8Array, allocUnsafe) are
// slices of one ArrayBuffer that lives on after them and is never wiped.
function sharedPool(): ArrayBuffer {
  return Buffer.allocUnsafe(1).buffer as ArrayBuffer;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle) !== -1;
}

describe('childEnvironment', () => {
  it('leaves no copy of a secret in the shared buffer pool', () => {
    const canary = new TextEncoder().encode(`canary-${process.pid}-${Date.now()}-pool`);
    const secret = SecretBytes.copyOf(canary);
    const before = sharedPool();
    const env = childEnvironment({}, new Map([['DB_PASSWORD', secret]]));
    expect(env.DB_PASSWORD).toBe(new TextDecoder().decode(canary));
    // A pooled copy made by the call is in the pool current then: the one before, or the next
    // if the call filled it.
    for (const pool of new Set([before, sharedPool()])) {
      expect(contains(new Uint8Array(pool), canary)).toBe(false);
    }
    secret.wipe();
  });

  it('explicit env wins over a secret of the same name', () => {
    const secret = SecretBytes.copyOf(new TextEncoder().encode('from-secret'));
    expect(childEnvironment({ DB_PASSWORD: 'explicit' }, new Map([['DB_PASSWORD', secret]])).DB_PASSWORD).toBe('explicit');
    secret.wipe();
  });
});
