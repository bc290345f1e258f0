import { describe, expect, it } from 'vitest';
import { SerialQueue } from './serial-queue.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('SerialQueue', () => {
  it('runs work one piece at a time, in the order it was queued', async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const job = (name: string) => async () => {
      running += 1;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running -= 1;
      return name;
    };
    const results = await Promise.all([queue.run(job('a')), queue.run(job('b')), queue.run(job('c'))]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('rejects a failed piece to its caller and goes on with the next', async () => {
    const queue = new SerialQueue();
    const failed = queue.run(async () => {
      throw new Error('boom');
    });
    const next = queue.run(async () => 'next');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next');
  });

  it('idle resolves once everything queued so far has finished, failures included', async () => {
    const queue = new SerialQueue();
    let done = false;
    void queue
      .run(async () => {
        await tick();
        throw new Error('ignored here');
      })
      .catch(() => undefined);
    void queue.run(async () => {
      await tick();
      done = true;
    });
    await queue.idle();
    expect(done).toBe(true);
  });
});
