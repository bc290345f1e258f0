import { afterEach, describe, expect, it, vi } from 'vitest';
import { PushQueue } from './push-queue.js';

async function collect<T>(queue: AsyncIterable<T>): Promise<T[]> {
  const seen: T[] = [];
  for await (const item of queue) seen.push(item);
  return seen;
}

describe('PushQueue', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('delivers pushed items in order, waiting for new ones, and ends after the queued ones on close', async () => {
    const queue = new PushQueue<number>();
    queue.push(1);
    const seen = collect(queue);
    await new Promise((resolve) => setImmediate(resolve));
    expect(queue.push(2)).toBe(true);
    queue.push(3);
    queue.close();
    expect(queue.push(4)).toBe(false);
    expect(await seen).toEqual([1, 2, 3]);
  });

  it('delivers falsy items', async () => {
    const queue = new PushQueue<number | string>();
    queue.push(0);
    queue.push('');
    queue.close();
    expect(await collect(queue)).toEqual([0, '']);
  });

  it('fail ends the iteration with the error after the queued items', async () => {
    const queue = new PushQueue<string>();
    queue.push('a');
    queue.fail(new Error('broken'));
    queue.fail(new Error('second reason ignored'));
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const item of queue) seen.push(item);
      })(),
    ).rejects.toThrow('broken');
    expect(seen).toEqual(['a']);
  });

  it('reclaim ends the iteration at once and hands back what was never taken', async () => {
    const queue = new PushQueue<string>();
    const iterator = queue[Symbol.asyncIterator]();
    queue.push('a');
    queue.push('b');
    expect(await iterator.next()).toEqual({ done: false, value: 'a' });
    expect(queue.reclaim()).toEqual(['b']);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(queue.push('c')).toBe(false);
  });

  it('reclaim also hands back what was taken within the retain window, oldest first', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const queue = new PushQueue<string>({ retainTakenMs: 1000 });
    const iterator = queue[Symbol.asyncIterator]();
    queue.push('old');
    await iterator.next();
    vi.setSystemTime(Date.now() + 5000);
    queue.push('recent');
    queue.push('untaken');
    await iterator.next();
    vi.setSystemTime(Date.now() + 500);
    expect(queue.reclaim()).toEqual(['recent', 'untaken']);
  });
});
