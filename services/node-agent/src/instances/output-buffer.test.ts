import { OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { describe, expect, it } from 'vitest';
import { OutputBuffer } from './output-buffer.js';

async function readAll(buffer: OutputBuffer, follow: boolean, signal = new AbortController().signal): Promise<string> {
  let text = '';
  for await (const chunk of buffer.read(follow, signal)) text += Buffer.from(chunk.data).toString();
  return text;
}

describe('OutputBuffer', () => {
  it('keeps the newest output within its byte limit, in order, with the stream of each chunk', async () => {
    const buffer = new OutputBuffer(10);
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
    const buffer = new OutputBuffer(4);
    buffer.append(OutputStream.STDOUT, Buffer.from('0123456789'));
    expect(await readAll(buffer, false)).toBe('6789');
  });

  it('delivers live output to followers until the instance ends', async () => {
    const buffer = new OutputBuffer(1024);
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
    const buffer = new OutputBuffer(1024);
    const abort = new AbortController();
    const following = readAll(buffer, true, abort.signal);
    buffer.append(OutputStream.STDOUT, Buffer.from('x'));
    await new Promise((resolve) => setImmediate(resolve));
    abort.abort();
    expect(await following).toBe('x');
  });

  it('shrinks to a tail for an ended instance', async () => {
    const buffer = new OutputBuffer(1024);
    for (const part of ['one\n', 'two\n', 'three\n']) buffer.append(OutputStream.STDOUT, Buffer.from(part));
    buffer.shrink(8);
    expect(await readAll(buffer, false)).toBe('three\n');
    buffer.append(OutputStream.STDOUT, Buffer.from('four\n'));
    expect(buffer.sizeBytes).toBeLessThanOrEqual(8);
  });
});
