import { Writable } from 'node:stream';
import { SecretBytes } from '@shellwego/kit/secret-bytes';
import { describe, expect, it } from 'vitest';
import { childEnvironment, validateShellNames, writeEnvironment } from './workload-env.js';

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

describe('writeEnvironment', () => {
  it('writes NUL-terminated records, explicit env over secrets, with PATH defaulted, and writes secrets from their own memory', async () => {
    const canary = new TextEncoder().encode(`canary-${process.pid}-${Date.now()}-records`);
    const secret = SecretBytes.copyOf(canary);
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    const before = sharedPool();
    await writeEnvironment(
      out,
      { A: 'x y', SHADOWED: 'explicit' },
      new Map([
        ['DB_PASSWORD', secret],
        ['SHADOWED', SecretBytes.copyOf(new TextEncoder().encode('hidden'))],
      ]),
    );
    // The secret's chunk is a view of the secret's own bytes, and no pooled copy was made.
    expect(chunks.some((chunk) => chunk.buffer === secret.reveal().buffer)).toBe(true);
    for (const pool of new Set([before, sharedPool()])) {
      expect(contains(new Uint8Array(pool), canary)).toBe(false);
    }
    const records = Buffer.concat(chunks).toString('utf8').split('\0');
    expect(records).toEqual([
      `DB_PASSWORD=${new TextDecoder().decode(canary)}`,
      'A=x y',
      'SHADOWED=explicit',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '',
    ]);
    secret.wipe();
  });
});

describe('validateShellNames', () => {
  it('accepts shell identifiers only, naming the variable but never its value', () => {
    expect(() => validateShellNames({ PATH: '/bin', _x1: '' }, new Map([['DB_PASSWORD', SecretBytes.copyOf(new Uint8Array([1]))]]))).not.toThrow();
    expect(() => validateShellNames({ 'my.var': 'value-123' }, new Map())).toThrow(/"my\.var"/);
    expect(() => validateShellNames({}, new Map([['1X', SecretBytes.copyOf(new Uint8Array([1]))]]))).toThrow(/"1X"/);
  });
});
