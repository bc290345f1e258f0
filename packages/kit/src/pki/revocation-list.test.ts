import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RevocationFeed, RevocationList } from './revocation-list.js';

const lists: RevocationList[] = [];
afterEach(() => {
  for (const list of lists.splice(0)) list.close();
});

async function fileList(content: string): Promise<RevocationList> {
  const path = join(await mkdtemp(join(tmpdir(), 'sw-revocations-')), 'revoked.txt');
  await writeFile(path, content);
  const list = await RevocationList.fromFile(path);
  lists.push(list);
  return list;
}

/** A feed the test controls: `serials` answered, or `down` rejecting every fetch. */
function controlledFeed(): RevocationFeed & { serials: string[]; down: boolean; fetches: number } {
  const feed = {
    name: 'the test feed',
    serials: [] as string[],
    down: false,
    fetches: 0,
    async fetch() {
      feed.fetches++;
      if (feed.down) throw new Error('connection refused');
      return [...feed.serials];
    },
  };
  return feed;
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('RevocationList following a feed', () => {
  it("refuses nothing from the feed before it answers, then holds the file's and the feed's serials, and picks up new ones", async () => {
    const list = await fileList('# operator\n0AbC\n');
    const feed = controlledFeed();
    feed.serials = ['00ff01'];
    list.follow(feed, { intervalMs: 20, staleAfterMs: 1_000 });
    expect(list.unavailable).toMatch(/revocations from the test feed have not been fetched yet/);
    await until(() => list.unavailable === undefined);
    expect(list.has('abc')).toBe(true);
    expect(list.has('ff:01')).toBe(true);
    expect(list.has('ff02')).toBe(false);
    feed.serials.push('ff02');
    await until(() => list.has('FF02'));
  });

  it('becomes unavailable, naming the last error, once the feed has not answered for staleAfterMs, and recovers', async () => {
    const list = await fileList('');
    const feed = controlledFeed();
    list.follow(feed, { intervalMs: 20, staleAfterMs: 200 });
    await until(() => list.unavailable === undefined);
    feed.down = true;
    const fetchesAtOutage = feed.fetches;
    // Stale only after the bound: a single failed poll is not an outage.
    await until(() => feed.fetches > fetchesAtOutage + 1);
    await until(() => list.unavailable !== undefined, 2_000);
    expect(list.unavailable).toMatch(/revocations from the test feed were last fetched \d+ s ago \(last error: connection refused\)/);
    feed.down = false;
    await until(() => list.unavailable === undefined);
  });

  it('keeps a feed revocation over a file revocation being removed, and stops polling when closed', async () => {
    const list = await fileList('');
    const feed = controlledFeed();
    feed.serials = ['1234'];
    list.follow(feed, { intervalMs: 20 });
    await until(() => list.has('1234'));
    list.close();
    const fetches = feed.fetches;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(feed.fetches).toBeLessThanOrEqual(fetches + 1);
  });
});
