import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { REDACTED_SECRET, SecretBytes } from '../secret-bytes/secret-bytes.js';
import { createLogger, REDACTED } from './logger.js';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  const raw = (): string => Buffer.concat(chunks).toString('utf8');
  const lines = (): Array<Record<string, unknown>> =>
    raw()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { stream, lines, raw };
}

const canaryText = (): string => `canary-${randomBytes(12).toString('hex')}`;

describe('createLogger', () => {
  it('writes one JSON line per event with service, pid, ISO time and level', () => {
    const out = capture();
    const log = createLogger({ service: 'scheduler', destination: out.stream, level: 'info' });
    log.info({ app: 'shop' }, 'deployed');
    log.debug('below the level');
    log.warn('second');
    const lines = out.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ service: 'scheduler', pid: process.pid, level: 'info', app: 'shop', msg: 'deployed' });
    expect(new Date(String(lines[0]?.time)).toISOString()).toBe(lines[0]?.time);
    expect(lines[1]?.level).toBe('warn');
  });

  it('redacts secret-looking fields at the top level and one level down', () => {
    const out = capture();
    const log = createLogger({ service: 'secrets', destination: out.stream });
    const c = canaryText();
    log.info({ password: c, token: c, secret: { value: c }, run: { secret_env: { K: c }, secretEnv: [c] } }, 'a');
    log.info({ req: { headers: { authorization: `Bearer ${c}`, host: 'x' } } }, 'b');
    log.info({ item: { value: c, token: c, password: c, name: 'DB_PASSWORD' } }, 'c');
    expect(out.raw()).not.toContain(c);
    const lines = out.lines();
    expect(lines[0]?.password).toBe(REDACTED);
    expect(lines[1]).toMatchObject({ req: { headers: { authorization: REDACTED, host: 'x' } } });
    expect(lines[2]).toMatchObject({ item: { value: REDACTED, name: 'DB_PASSWORD' } });
  });

  it('prints SecretBytes redacted and binary data as a byte count, at any depth', () => {
    const out = capture();
    const log = createLogger({ service: 'node-agent', destination: out.stream });
    const c = canaryText();
    const asBuffer = Buffer.from(c);
    const asArray = new TextEncoder().encode(c);
    const cyclic: Record<string, unknown> = { blob: asBuffer };
    cyclic.self = cyclic;
    log.info({ a: { b: { c: { d: SecretBytes.copyOf(asArray) } } }, buf: asBuffer, list: [asArray, asArray.buffer], cyclic }, 'x');
    log.info('interpolated %s %j %o', asBuffer, asArray, { deep: asBuffer });
    log.info(asBuffer);
    log.child({ key: asBuffer }).info('child');
    log
      .child({ instance: 'i-1' })
      .child({ grant: { sig: asArray } })
      .info('grandchild');
    expect(out.raw()).not.toContain(c);
    // Neither the text nor the byte values may appear (Buffer#toJSON would print them as numbers).
    expect(out.raw()).not.toContain(Array.from(asArray).slice(0, 8).join(','));
    const [first, second] = out.lines();
    expect(first).toMatchObject({
      a: { b: { c: { d: REDACTED_SECRET } } },
      buf: `[${asBuffer.byteLength} bytes]`,
      list: [`[${asArray.byteLength} bytes]`, `[${asArray.byteLength} bytes]`],
      cyclic: { blob: `[${asBuffer.byteLength} bytes]`, self: '[Circular]' },
    });
    expect(second?.msg).toContain(`[${asBuffer.byteLength} bytes]`);
    expect(out.lines()[3]).toMatchObject({ key: `[${asBuffer.byteLength} bytes]`, msg: 'child' });
    expect(out.lines()[4]).toMatchObject({ instance: 'i-1', grant: { sig: `[${asArray.byteLength} bytes]` }, msg: 'grandchild' });
  });

  it('serializes errors with their type and message, and their byte fields as counts', () => {
    const out = capture();
    const log = createLogger({ service: 'registry', destination: out.stream });
    const c = canaryText();
    const err = Object.assign(new TypeError('digest mismatch'), { payload: Buffer.from(c) });
    log.error({ err }, 'fetch failed');
    log.error(err);
    log.warn({ cause: new RangeError('nested') }, 'nested error');
    expect(out.raw()).not.toContain(c);
    const [first, second, third] = out.lines();
    expect(first).toMatchObject({ msg: 'fetch failed', err: { type: 'TypeError', message: 'digest mismatch', payload: `[${c.length} bytes]` } });
    expect(String((first?.err as { stack: string } | undefined)?.stack)).toContain('TypeError: digest mismatch');
    expect(second).toMatchObject({ msg: 'digest mismatch', err: { type: 'TypeError' } });
    expect(third).toMatchObject({ cause: { type: 'RangeError', message: 'nested' } });
  });

  it('takes the level from the option, then SHELLWEGO_LOG_LEVEL, then info', () => {
    const out = capture();
    expect(createLogger({ service: 's', destination: out.stream, env: {} }).level).toBe('info');
    expect(createLogger({ service: 's', destination: out.stream, env: { SHELLWEGO_LOG_LEVEL: 'debug' } }).level).toBe('debug');
    expect(createLogger({ service: 's', destination: out.stream, level: 'warn', env: { SHELLWEGO_LOG_LEVEL: 'debug' } }).level).toBe('warn');
    expect(() => createLogger({ service: 's', destination: out.stream, env: { SHELLWEGO_LOG_LEVEL: 'loud' } })).toThrow(
      /SHELLWEGO_LOG_LEVEL: unknown log level "loud"/,
    );
  });
});
