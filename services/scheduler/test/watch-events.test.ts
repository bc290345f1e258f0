// WatchEvents: stored events, then live ones, resumable from a cursor with
// no gap and no duplicate, also while events are being written; filters.
import { Code, ConnectError } from '@connectrpc/connect';
import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import { SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let harness: SchedulerHarness;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
  await harness.addNode({ capacity: { cpuMillis: 8000, memoryMib: 8192, maxInstances: 50 } });
});
afterAll(async () => {
  await harness?.stop();
});

/**
 * Follows from `after` until `count` events arrived, then cancels the call, as
 * a client that goes away does (breaking out of the loop alone would leave the
 * call open). Events already in flight after the cancel are not counted.
 */
async function readSome(after: bigint, count: number): Promise<Event[]> {
  const abort = new AbortController();
  const got: Event[] = [];
  try {
    for await (const { event } of harness.apps.watchEvents({ afterCursor: after, follow: true }, { signal: abort.signal, timeoutMs: 0 })) {
      if (event !== undefined && got.length < count) got.push(event);
      if (got.length === count) abort.abort();
    }
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Canceled) throw error;
  }
  return got;
}

async function readAll(filter: { app?: string; instanceId?: string } = {}): Promise<Event[]> {
  const all: Event[] = [];
  for await (const { event } of harness.apps.watchEvents({ ...filter, follow: false })) if (event !== undefined) all.push(event);
  return all;
}

describe('WatchEvents', () => {
  it('resumes from a cursor with no gap and no duplicate while events keep coming', async () => {
    await harness.deploy('churn', spec({ replicas: 1 }));
    // Scaling up and down writes events (instances created, placed, started, stopped) the whole time the watcher reads.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 40; i++) await harness.apps.scaleApp({ name: 'churn', replicas: i % 2 === 0 ? 6 : 1 });
    })();

    const pieces: Event[][] = [];
    let cursor = 0n;
    for (const size of [25, 40, 60, 80]) {
      const piece = await readSome(cursor, size);
      expect(piece).toHaveLength(size);
      pieces.push(piece);
      cursor = piece.at(-1)?.cursor ?? cursor;
    }
    writing = false;
    await writer;

    const resumed = pieces.flat();
    const cursors = resumed.map((e) => e.cursor);
    expect(new Set(cursors).size).toBe(cursors.length);
    const stored = await readAll();
    // Exactly the stored log's first events, in order: nothing skipped at any resume point, nothing twice.
    expect(cursors).toEqual(stored.slice(0, resumed.length).map((e) => e.cursor));
    expect(resumed.map((e) => e.message)).toEqual(stored.slice(0, resumed.length).map((e) => e.message));
    for (let i = 1; i < cursors.length; i++) expect((cursors[i] as bigint) > (cursors[i - 1] as bigint)).toBe(true);
  });

  it('treats a cursor past what the database holds (any uint64) as after every event', async () => {
    expect((await readAll()).length).toBeGreaterThan(0);
    const after: Event[] = [];
    for await (const { event } of harness.apps.watchEvents({ afterCursor: 2n ** 64n - 1n, follow: false })) if (event !== undefined) after.push(event);
    expect(after).toEqual([]);
  });

  it('filters by app and by instance, and ends after the stored events without follow', async () => {
    await harness.deploy('quiet', spec({ replicas: 1 }));
    const quiet = await harness.events.waitFor(
      (e) => e.app === 'quiet' && e.detail.case === 'instanceState' && e.message.includes('HEALTHY'),
      10_000,
      'quiet healthy',
    );
    const onlyQuiet = await readAll({ app: 'quiet' });
    expect(onlyQuiet.length).toBeGreaterThan(3);
    expect(onlyQuiet.every((e) => e.app === 'quiet')).toBe(true);
    const oneInstance = await readAll({ instanceId: quiet.instanceId });
    expect(oneInstance.map((e) => e.detail.case)).toContain('placement');
    expect(oneInstance.every((e) => e.instanceId === quiet.instanceId)).toBe(true);
    expect(oneInstance.map((e) => (e.detail.case === 'instanceState' ? e.message.split(' ')[2] : '')).filter(Boolean)).toEqual([
      'UNSPECIFIED',
      'PENDING',
      'ASSIGNED',
      'PULLING',
      'BOOTING',
      'STARTING',
      'RUNNING',
    ]);
  });
});
