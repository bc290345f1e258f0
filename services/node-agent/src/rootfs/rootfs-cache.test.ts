// The rootfs cache with a stand-in fetcher (it writes known bytes where the registry client
// would): single flight, hits, re-verification after a restart, LRU eviction that spares images
// in use.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RootfsCache, type RootfsFetcher } from './rootfs-cache.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'na-rootfs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const grant = {} as Grant;
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const contentOf = (imageDigest: string, size: number) => Buffer.alloc(size, imageDigest.slice(-1));

function standIn(size: number): { fetch: RootfsFetcher; calls: string[] } {
  const calls: string[] = [];
  const fetch: RootfsFetcher = async (imageDigest, _grant, path) => {
    calls.push(imageDigest);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const bytes = contentOf(imageDigest, size);
    await writeFile(path, bytes);
    return { sizeBytes: size, sha256: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  };
  return { fetch, calls };
}

describe('RootfsCache', () => {
  it('fetches an image once for concurrent users, then serves it from disk', async () => {
    const cacheDir = join(dir, 'single');
    const { fetch, calls } = standIn(1000);
    const cache = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch, log: capturingLogger().logger });
    await cache.init();
    const [a, b] = await Promise.all([cache.acquire(digest(1), grant), cache.acquire(digest(1), grant)]);
    expect(calls).toEqual([digest(1)]);
    expect(a?.path).toBe(b?.path);
    expect([a?.fetched, b?.fetched]).toEqual([true, true]);
    const c = await cache.acquire(digest(1), grant);
    expect(c.fetched).toBe(false);
    expect(calls).toHaveLength(1);
    expect(cache.usedBytes).toBe(1000);
    await expect(cache.acquire('sha256:../../etc/passwd', grant)).rejects.toThrow(/not sha256:<64 lowercase hex>/);
  });

  it('re-hashes what an earlier process cached and fetches it again when it changed on disk', async () => {
    const cacheDir = join(dir, 'restart');
    const first = standIn(500);
    const before = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch: first.fetch, log: capturingLogger().logger });
    await before.init();
    await (await before.acquire(digest(2), grant)).release();
    await (await before.acquire(digest(3), grant)).release();

    await writeFile(join(cacheDir, `${digest(3).slice(7)}.ext4`), contentOf(digest(9), 500));
    await writeFile(join(cacheDir, 'leftover.ext4.partial'), 'half a download');
    const second = standIn(500);
    const { logger, lines } = capturingLogger();
    const after = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch: second.fetch, log: logger });
    await after.init();
    expect(await readdir(cacheDir)).not.toContain('leftover.ext4.partial');
    expect((await after.acquire(digest(2), grant)).fetched).toBe(false);
    expect((await after.acquire(digest(3), grant)).fetched).toBe(true);
    expect(second.calls).toEqual([digest(3)]);
    expect(lines.join('\n')).toMatch(/cached rootfs changed on disk/);
  });

  it('evicts the least recently used images above the limit, never one in use', async () => {
    const cacheDir = join(dir, 'lru');
    const { fetch, calls } = standIn(400);
    const cache = new RootfsCache({ dir: cacheDir, maxBytes: 1000, fetch, log: capturingLogger().logger });
    await cache.init();
    const held = await cache.acquire(digest(10), grant);
    await (await cache.acquire(digest(11), grant)).release();
    await (await cache.acquire(digest(12), grant)).release();
    // 1200 bytes: the oldest idle one (11) goes; 10 is in use.
    expect(cache.usedBytes).toBe(800);
    expect((await cache.acquire(digest(12), grant)).fetched).toBe(false);
    expect((await cache.acquire(digest(11), grant)).fetched).toBe(true);
    expect(calls).toEqual([digest(10), digest(11), digest(12), digest(11)]);
    await held.release();
    expect((await readdir(cacheDir)).filter((f) => f.endsWith('.ext4')).length).toBeLessThanOrEqual(2);
  });
});
