import { Console } from 'node:console';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { format, inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log/logger.js';
import { REDACTED_SECRET, SecretBytes, wipeAll } from './secret-bytes.js';

function canary(): { text: string; bytes: Uint8Array } {
  const text = `canary-${randomBytes(12).toString('hex')}`;
  return { text, bytes: new TextEncoder().encode(text) };
}

function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

function allIndexesOf(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(Buffer.from(needle));
}

describe('SecretBytes', () => {
  it('never prints its value through any string conversion', () => {
    const { text, bytes } = canary();
    const secret = SecretBytes.copyOf(bytes);
    const outputs = [
      String(secret),
      `${secret}`,
      `x${secret}`,
      JSON.stringify({ secret }),
      JSON.stringify([secret, { nested: { secret } }]),
      inspect(secret, { depth: 10, showHidden: true }),
      inspect({ a: { b: { c: secret } } }, { depth: 10, showHidden: true }),
      format('%s %o %O %j', secret, secret, secret, secret),
      new Error(`failed for ${secret}`).message,
    ];
    for (const output of outputs) {
      expect(output).not.toContain(text);
    }
    expect(String(secret)).toBe(REDACTED_SECRET);
    expect(JSON.stringify({ secret })).toBe(`{"secret":"${REDACTED_SECRET}"}`);
    // The value itself is intact and reachable only through reveal().
    expect(Buffer.from(secret.reveal()).toString('utf8')).toBe(text);
  });

  it('never prints its value through console.log', () => {
    const { text, bytes } = canary();
    const secret = SecretBytes.copyOf(bytes);
    const out = collector();
    const console = new Console({ stdout: out.stream, stderr: out.stream });
    console.log(secret);
    console.log({ deep: [{ secret }] });
    console.log('%s and %o', secret, { secret });
    console.error(secret);
    console.dir(secret, { depth: 10, showHidden: true });
    expect(out.text()).toContain(REDACTED_SECRET);
    expect(out.text()).not.toContain(text);
  });

  it('never prints its value through a service log line', () => {
    const { text, bytes } = canary();
    const secret = SecretBytes.copyOf(bytes);
    const out = collector();
    const log = createLogger({ service: 'test', destination: out.stream, level: 'info' });
    log.info({ secret, holder: { inner: secret }, list: [secret] }, 'resolved');
    log.info(secret);
    log.info('interpolated %s %j %o', secret, secret, secret);
    log.child({ secret }).info('child');
    expect(out.text().split('\n').filter(Boolean)).toHaveLength(4);
    expect(out.text()).toContain(REDACTED_SECRET);
    expect(out.text()).not.toContain(text);
  });

  it('adopt keeps the caller buffer without copying; copyOf copies', () => {
    const { bytes } = canary();
    const adopted = SecretBytes.adopt(bytes);
    expect(adopted.reveal()).toBe(bytes);
    const copied = SecretBytes.copyOf(bytes);
    expect(copied.reveal()).not.toBe(bytes);
    expect(copied.reveal().buffer).not.toBe(bytes.buffer);
    expect(copied.equals(adopted)).toBe(true);
    expect(copied.byteLength).toBe(bytes.byteLength);
  });

  it('wipe zero-fills the underlying memory, is idempotent, and blocks reveal', () => {
    const { bytes } = canary();
    const backing = new Uint8Array(bytes.byteLength + 8);
    backing.set(bytes, 4);
    const view = backing.subarray(4, 4 + bytes.byteLength);
    const secret = SecretBytes.adopt(view);
    expect(allIndexesOf(backing, bytes)).toBe(true);

    secret.wipe();
    expect(secret.isWiped).toBe(true);
    expect(allIndexesOf(backing, bytes)).toBe(false);
    expect(Array.from(view).every((b) => b === 0)).toBe(true);
    secret.wipe();
    expect(secret.isWiped).toBe(true);
    expect(() => secret.reveal()).toThrow(/wiped/);
  });

  it('copyOf leaves the source alone when the copy is wiped', () => {
    const { bytes } = canary();
    const source = Uint8Array.from(bytes);
    SecretBytes.copyOf(source).wipe();
    expect(source).toEqual(bytes);
  });

  it('equals compares content, not identity, and differs on length', () => {
    const a = SecretBytes.copyOf(new Uint8Array([1, 2, 3]));
    expect(a.equals(SecretBytes.copyOf(new Uint8Array([1, 2, 3])))).toBe(true);
    expect(a.equals(SecretBytes.copyOf(new Uint8Array([1, 2, 4])))).toBe(false);
    expect(a.equals(SecretBytes.copyOf(new Uint8Array([1, 2])))).toBe(false);
    const wiped = SecretBytes.copyOf(new Uint8Array([1, 2, 3]));
    wiped.wipe();
    expect(() => a.equals(wiped)).toThrow(/wiped/);
  });

  it('wipeAll wipes single values, arrays, sets and map values', () => {
    const make = (): SecretBytes => SecretBytes.copyOf(randomBytes(8));
    const single = make();
    const list = [make(), make()];
    const set = new Set([make()]);
    const map = new Map([['DB_PASSWORD', make()]]);
    wipeAll(single, list, set, map, undefined);
    const all = [single, ...list, ...set, ...map.values()];
    expect(all.every((s) => s.isWiped)).toBe(true);
  });
});
