// The rootfs cache with a stand-in fetcher (it writes known bytes where the registry client
// would): single flight, hits, re-verification after a restart, LRU eviction that spares images
// in use, and the sha256 a grant pins: a download or a cached copy that differs is refused.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { type Grant, GrantClaimsSchema, GrantSchema } from '@shellwego/contracts/common/v1/grant_pb';
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

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const contentOf = (imageDigest: string, size: number) => Buffer.alloc(size, imageDigest.slice(-1));
const sha256Of = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
/** A rootfs grant pinning the sha256 of what the stand-in serves for `imageDigest` (unsigned: the cache reads only the pin). */
const pinning = (sha256: string): Grant => create(GrantSchema, { claims: toBinary(GrantClaimsSchema, create(GrantClaimsSchema, { rootfsSha256: sha256 })) });
const pin = (imageDigest: string, size: number): Grant => pinning(sha256Of(contentOf(imageDigest, size)));

function standIn(size: number): { fetch: RootfsFetcher; calls: string[] } {
  const calls: string[] = [];
  const fetch: RootfsFetcher = async (imageDigest, _grant, _sha256, path) => {
    calls.push(imageDigest);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const bytes = contentOf(imageDigest, size);
    await writeFile(path, bytes);
    return { sizeBytes: size, sha256: sha256Of(bytes) };
  };
  return { fetch, calls };
}

describe('RootfsCache', () => {
  it('fetches an image once for concurrent users, then serves it from disk', async () => {
    const cacheDir = join(dir, 'single');
    const { fetch, calls } = standIn(1000);
    const cache = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch, log: capturingLogger().logger });
    await cache.init();
    const [a, b] = await Promise.all([cache.acquire(digest(1), pin(digest(1), 1000)), cache.acquire(digest(1), pin(digest(1), 1000))]);
    expect(calls).toEqual([digest(1)]);
    expect(a?.path).toBe(b?.path);
    expect([a?.fetched, b?.fetched]).toEqual([true, true]);
    const c = await cache.acquire(digest(1), pin(digest(1), 1000));
    expect(c.fetched).toBe(false);
    expect(calls).toHaveLength(1);
    expect(cache.usedBytes).toBe(1000);
    await expect(cache.acquire('sha256:../../etc/passwd', pin(digest(1), 1000))).rejects.toThrow(/not sha256:<64 lowercase hex>/);
  });

  it('re-hashes what an earlier process cached and fetches it again when it changed on disk', async () => {
    const cacheDir = join(dir, 'restart');
    const first = standIn(500);
    const before = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch: first.fetch, log: capturingLogger().logger });
    await before.init();
    await (await before.acquire(digest(2), pin(digest(2), 500))).release();
    await (await before.acquire(digest(3), pin(digest(3), 500))).release();

    await writeFile(join(cacheDir, `${digest(3).slice(7)}.ext4`), contentOf(digest(9), 500));
    await writeFile(join(cacheDir, 'leftover.ext4.partial'), 'half a download');
    const second = standIn(500);
    const { logger, lines } = capturingLogger();
    const after = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch: second.fetch, log: logger });
    await after.init();
    expect(await readdir(cacheDir)).not.toContain('leftover.ext4.partial');
    expect((await after.acquire(digest(3), pin(digest(3), 500))).fetched).toBe(true);
    expect(second.calls).toEqual([digest(3)]);
    expect(lines.join('\n')).toMatch(/cached rootfs changed on disk/);
  });

  it('evicts the least recently used images above the limit, never one in use', async () => {
    const cacheDir = join(dir, 'lru');
    const { fetch, calls } = standIn(400);
    const cache = new RootfsCache({ dir: cacheDir, maxBytes: 1000, fetch, log: capturingLogger().logger });
    await cache.init();
    const held = await cache.acquire(digest(10), pin(digest(10), 400));
    await (await cache.acquire(digest(11), pin(digest(11), 400))).release();
    await (await cache.acquire(digest(12), pin(digest(12), 400))).release();
    // 1200 bytes: the oldest idle one (11) goes; 10 is in use.
    expect(cache.usedBytes).toBe(800);
    expect((await cache.acquire(digest(12), pin(digest(12), 400))).fetched).toBe(false);
    expect((await cache.acquire(digest(11), pin(digest(11), 400))).fetched).toBe(true);
    expect(calls).toEqual([digest(10), digest(11), digest(12), digest(11)]);
    await held.release();
    expect((await readdir(cacheDir)).filter((f) => f.endsWith('.ext4')).length).toBeLessThanOrEqual(2);
  });

  it('refuses a download that is not the rootfs the grant pins, whatever the fetcher vouches for, and keeps nothing', async () => {
    const cacheDir = join(dir, 'pinned-download');
    const { fetch } = standIn(300);
    const cache = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch, log: capturingLogger().logger });
    await cache.init();
    const other = sha256Of(Buffer.from('another rootfs'));
    await expect(cache.acquire(digest(20), pinning(other))).rejects.toThrow(`but the grant pins ${other}`);
    expect(await readdir(cacheDir)).toEqual([]);
    await expect(cache.acquire(digest(20), create(GrantSchema, {}))).rejects.toThrow(/pins no root filesystem sha256/);
  });

  it('reuses a cached copy only when it is the one the grant pins, fetching again otherwise', async () => {
    const cacheDir = join(dir, 'pinned-cache');
    const { fetch, calls } = standIn(300);
    const { logger, lines } = capturingLogger();
    const cache = new RootfsCache({ dir: cacheDir, maxBytes: 10_000, fetch, log: logger });
    await cache.init();
    const held = await cache.acquire(digest(21), pin(digest(21), 300));
    const other = sha256Of(Buffer.from('another rootfs'));
    // In use by a VM: not replaced, refused.
    await expect(cache.acquire(digest(21), pinning(other))).rejects.toThrow(`has sha256 ${sha256Of(contentOf(digest(21), 300))}, but the grant pins ${other}`);
    await held.release();
    // Idle: dropped, fetched again under the new pin (which this stand-in cannot satisfy).
    await expect(cache.acquire(digest(21), pinning(other))).rejects.toThrow(`but the grant pins ${other}`);
    expect(lines.join('\n')).toMatch(/cached rootfs is not the one the grant pins/);
    expect(calls).toEqual([digest(21), digest(21)]);
    expect((await cache.acquire(digest(21), pin(digest(21), 300))).fetched).toBe(true);
  });
});
