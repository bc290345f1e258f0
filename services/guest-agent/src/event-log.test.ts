import { describe, expect, it } from 'vitest';
import { EventLog } from './event-log.js';

async function take(log: EventLog, count: number): Promise<string[]> {
  const abort = new AbortController();
  const seen: string[] = [];
  for await (const event of log.follow(abort.signal)) {
    const { case: kind, value } = event.event;
    seen.push(kind === 'output' ? `output:${Buffer.from(value.data).toString()}` : `${kind}:${value?.pid}`);
    if (seen.length === count) {
      abort.abort();
    }
  }
  return seen;
}

describe('EventLog', () => {
  it('replays from the last start, then delivers live events', async () => {
    const log = new EventLog(1 << 20);
    log.started(1);
    log.output('stdout', Buffer.from('a'));
    log.exited(1, 0, null);
    log.started(2);
    log.output('stderr', Buffer.from('b'));
    const reader = take(log, 4);
    log.output('stdout', Buffer.from('c'));
    log.exited(2, null, 'SIGTERM');
    expect(await reader).toEqual(['started:2', 'output:b', 'output:c', 'exited:2']);
  });

  it('stays within its byte bound, keeping the start so late readers still learn the pid', async () => {
    const log = new EventLog(4096);
    log.started(7);
    for (let i = 0; i < 1000; i++) {
      log.output('stdout', Buffer.from(`line-${i}`.padEnd(100, '.')));
    }
    const seen = await take(log, 20);
    expect(seen[0]).toBe('started:7');
    // Only the newest output survived: at most 4096 bytes of it.
    expect(seen[1]).toMatch(/^output:line-9\d\d/);
    const all = await take(log, 1 + Math.floor(4096 / 164));
    expect(all.at(-1)).toMatch(/^output:line-999/);
  });

  it('ends a reader when its signal aborts while it waits', async () => {
    const log = new EventLog(1024);
    const abort = new AbortController();
    const iterator = log.follow(abort.signal);
    const next = iterator.next();
    abort.abort();
    expect(await next).toEqual({ done: true, value: undefined });
  });
});
