import { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { describe, expect, it } from 'vitest';
import { OutputLog } from './output-log.js';

async function readAll(buffer: OutputLog, follow: boolean, signal = new AbortController().signal): Promise<string> {
  let text = '';
  for await (const chunk of buffer.read(follow, signal)) text += Buffer.from(chunk.data).toString();
  return text;
}

describe('OutputLog of a workload', () => {
  it('keeps the newest output within its byte limit, in order, with the stream of each chunk', async () => {
    const buffer = new OutputLog(10);
    buffer.append(OutputStream.STDOUT, Buffer.from('aaaa'));
    buffer.append(OutputStream.STDERR, Buffer.from('bbbb'));
    buffer.append(OutputStream.STDOUT, Buffer.from('cccc'));
    expect(buffer.sizeBytes).toBe(8);
    const streams: OutputStream[] = [];
    for await (const chunk of buffer.read(false, new AbortController().signal)) streams.push(chunk.stream);
    expect(streams).toEqual([OutputStream.STDERR, OutputStream.STDOUT]);
    expect(await readAll(buffer, false)).toBe('bbbbcccc');
  });

  it('keeps only the tail of a chunk larger than the whole buffer', async () => {
    const buffer = new OutputLog(4);
    buffer.append(OutputStream.STDOUT, Buffer.from('0123456789'));
    expect(await readAll(buffer, false)).toBe('6789');
  });

  it('delivers live output to followers until the instance ends', async () => {
    const buffer = new OutputLog(1024);
    buffer.append(OutputStream.STDOUT, Buffer.from('first '));
    const following = readAll(buffer, true);
    buffer.append(OutputStream.STDOUT, Buffer.from('second '));
    await new Promise((resolve) => setImmediate(resolve));
    buffer.append(OutputStream.STDERR, Buffer.from('third'));
    buffer.end();
    expect(await following).toBe('first second third');
    buffer.append(OutputStream.STDOUT, Buffer.from('ignored after the end'));
    expect(await readAll(buffer, true)).toBe('first second third');
  });

  it('ends a follower when its caller goes away', async () => {
    const buffer = new OutputLog(1024);
    const abort = new AbortController();
    const following = readAll(buffer, true, abort.signal);
    buffer.append(OutputStream.STDOUT, Buffer.from('x'));
    await new Promise((resolve) => setImmediate(resolve));
    abort.abort();
    expect(await following).toBe('x');
  });

  it('shrinks to a tail for an ended instance', async () => {
    const buffer = new OutputLog(1024);
    for (const part of ['one\n', 'two\n', 'three\n']) buffer.append(OutputStream.STDOUT, Buffer.from(part));
    buffer.shrink(8);
    expect(await readAll(buffer, false)).toBe('three\n');
    buffer.append(OutputStream.STDOUT, Buffer.from('four\n'));
    expect(buffer.sizeBytes).toBeLessThanOrEqual(8);
  });
});

type ProcessEvent = { readonly started: number } | { readonly exited: number };

async function take(log: OutputLog<ProcessEvent>, count: number): Promise<string[]> {
  const abort = new AbortController();
  const seen: string[] = [];
  for await (const entry of log.read(true, abort.signal)) {
    if ('stream' in entry) seen.push(`output:${Buffer.from(entry.data).toString()}`);
    else seen.push('started' in entry ? `started:${entry.started}` : `exited:${entry.exited}`);
    if (seen.length === count) {
      abort.abort();
    }
  }
  return seen;
}

describe('OutputLog with process events', () => {
  it('replays from the last start, then delivers live events', async () => {
    const log = new OutputLog<ProcessEvent>(1 << 20, { entryOverheadBytes: 64 });
    log.record({ started: 1 }, { restart: true });
    log.append(OutputStream.STDOUT, Buffer.from('a'));
    log.record({ exited: 1 });
    log.record({ started: 2 }, { restart: true });
    log.append(OutputStream.STDERR, Buffer.from('b'));
    const reader = take(log, 4);
    log.append(OutputStream.STDOUT, Buffer.from('c'));
    log.record({ exited: 2 });
    expect(await reader).toEqual(['started:2', 'output:b', 'output:c', 'exited:2']);
  });

  it('stays within its byte bound, keeping the start so late readers still learn the pid', async () => {
    const log = new OutputLog<ProcessEvent>(4096, { entryOverheadBytes: 64 });
    log.record({ started: 7 }, { restart: true });
    for (let i = 0; i < 1000; i++) {
      log.append(OutputStream.STDOUT, Buffer.from(`line-${i}`.padEnd(100, '.')));
    }
    expect(log.sizeBytes).toBeLessThanOrEqual(4096);
    const seen = await take(log, 20);
    expect(seen[0]).toBe('started:7');
    // Only the newest output survived: at most 4096 bytes of it.
    expect(seen[1]).toMatch(/^output:line-9\d\d/);
    const all = await take(log, 1 + Math.floor(4096 / 164));
    expect(all.at(-1)).toMatch(/^output:line-999/);
  });

  it('keeps an event that alone is over the bound, and the tail of a chunk that is', async () => {
    const log = new OutputLog<ProcessEvent>(70, { entryOverheadBytes: 64 });
    log.record({ started: 3 }, { restart: true });
    log.record({ exited: 3 });
    expect(await take(log, 2)).toEqual(['started:3', 'exited:3']);
    log.append(OutputStream.STDOUT, Buffer.from('0123456789'));
    expect(await take(log, 2)).toEqual(['started:3', 'output:456789']);
    expect(log.sizeBytes).toBe(70);
  });

  it('ends a reader when its signal aborts while it waits', async () => {
    const log = new OutputLog<ProcessEvent>(1024);
    const abort = new AbortController();
    const iterator = log.read(true, abort.signal);
    const next = iterator.next();
    abort.abort();
    expect(await next).toEqual({ done: true, value: undefined });
  });
});
