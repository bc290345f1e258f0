// Root filesystem images on this node, by image digest: fetched once from the registry (the
// download must hash to the sha256 the instance's grant pins, whatever the registry says),
// re-hashed on their first use by this agent process (a file changed on disk is fetched again),
// reused only when their sha256 is the one the grant pins, held while a VM uses them, and
// evicted least recently used first once the cache is over its size limit.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { pinnedRootfsSha256 } from '@shellwego/kit/grant';
import type { Logger } from '@shellwego/kit/log';

const DIGEST = /^sha256:([0-9a-f]{64})$/;

export interface FetchedImage {
  readonly sizeBytes: number;
  /** "sha256:<hex>" of the whole file, as the registry vouched for it. */
  readonly sha256: string;
}

/** Downloads an image's rootfs to `path`, verified to hash to `sha256`; throws when it cannot. */
export type RootfsFetcher = (imageDigest: string, grant: Grant, sha256: string, path: string, signal: AbortSignal | undefined) => Promise<FetchedImage>;

export interface RootfsLease {
  readonly path: string;
  /** False on a cache hit. */
  readonly fetched: boolean;
  /** Lets the image go; resolves once the eviction it allows is done. */
  release(): Promise<void>;
}

export interface RootfsCacheOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly fetch: RootfsFetcher;
  readonly log: Logger;
}

interface Entry {
  readonly digest: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  lastUsedMs: number;
  refs: number;
  verified: boolean;
}

export class RootfsCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<{ entry: Entry; fetched: boolean }>>();

  constructor(private readonly options: RootfsCacheOptions) {}

  get usedBytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.sizeBytes;
    return total;
  }

  /** Indexes what an earlier agent process left; drops broken downloads and unindexed files. */
  async init(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.options.dir)) {
      const path = join(this.options.dir, name);
      const hex = /^([0-9a-f]{64})\.ext4$/.exec(name)?.[1];
      if (hex === undefined) {
        if (!/^[0-9a-f]{64}\.json$/.test(name)) await rm(path, { recursive: true, force: true });
        continue;
      }
      const meta = await readMeta(join(this.options.dir, `${hex}.json`));
      const info = await stat(path).catch(() => undefined);
      if (meta === undefined || info === undefined || info.size !== meta.sizeBytes || meta.digest !== `sha256:${hex}`) {
        await this.removeFiles(hex);
        continue;
      }
      this.entries.set(meta.digest, {
        digest: meta.digest,
        path,
        sizeBytes: meta.sizeBytes,
        sha256: meta.sha256,
        lastUsedMs: info.mtimeMs,
        refs: 0,
        verified: false,
      });
    }
  }

  /**
   * The rootfs of `imageDigest` whose sha256 is the one `grant` pins, fetched
   * with `grant` when it is not here (or no longer intact, or another copy).
   * Throws GrantError when the grant pins none.
   */
  async acquire(imageDigest: string, grant: Grant, signal?: AbortSignal): Promise<RootfsLease> {
    const hex = hexOf(imageDigest);
    const pinned = pinnedRootfsSha256(grant);
    for (;;) {
      const cached = this.entries.get(imageDigest);
      if (cached !== undefined && cached.sha256 !== pinned) {
        await this.dropUnpinned(cached, pinned);
        continue;
      }
      if (cached !== undefined && (cached.verified || (await this.verify(cached)))) {
        return this.lease(cached, false);
      }
      if (this.entries.get(imageDigest) !== undefined && !this.inFlight.has(imageDigest)) {
        throw new Error(`the cached rootfs of ${imageDigest} changed on disk while a VM uses it; stop that VM, then deploy again`);
      }
      let download = this.inFlight.get(imageDigest);
      if (download === undefined) {
        download = this.download(imageDigest, hex, grant, pinned, signal);
        this.inFlight.set(imageDigest, download);
        void download.then(
          () => this.inFlight.delete(imageDigest),
          () => this.inFlight.delete(imageDigest),
        );
      }
      const { entry, fetched } = await download;
      // A download started for another instance may have pinned another sha256: then look again.
      if (this.entries.get(imageDigest) === entry && entry.sha256 === pinned) return this.lease(entry, fetched);
    }
  }

  /** Holds a cached image for a VM booted by an earlier agent process (never fetches). */
  hold(imageDigest: string): RootfsLease | undefined {
    const entry = this.entries.get(imageDigest);
    return entry === undefined ? undefined : this.lease(entry, false);
  }

  private lease(entry: Entry, fetched: boolean): RootfsLease {
    entry.refs += 1;
    entry.lastUsedMs = Date.now();
    void utimes(entry.path, new Date(), new Date()).catch(() => undefined);
    let released = false;
    return {
      path: entry.path,
      fetched,
      release: async () => {
        if (released) return;
        released = true;
        entry.refs -= 1;
        await this.evict();
      },
    };
  }

  /** Forgets a cached copy whose sha256 is not the one a grant pins, unless a VM or a download uses it. */
  private async dropUnpinned(entry: Entry, pinned: string): Promise<void> {
    if (entry.refs > 0 || this.inFlight.has(entry.digest)) {
      throw new Error(
        `the cached rootfs of ${entry.digest} has sha256 ${entry.sha256}, but the grant pins ${pinned}; a running VM uses the cached copy, so it cannot be replaced now`,
      );
    }
    this.options.log.warn({ image: entry.digest, cached: entry.sha256, pinned }, 'cached rootfs is not the one the grant pins; fetching it again');
    this.entries.delete(entry.digest);
    await this.removeFiles(hexOf(entry.digest));
  }

  private async download(
    imageDigest: string,
    hex: string,
    grant: Grant,
    pinned: string,
    signal: AbortSignal | undefined,
  ): Promise<{ entry: Entry; fetched: boolean }> {
    const path = join(this.options.dir, `${hex}.ext4`);
    const started = performance.now();
    const fetched = await this.options.fetch(imageDigest, grant, pinned, path, signal);
    if (fetched.sha256 !== pinned) {
      await this.removeFiles(hex);
      throw new Error(`the rootfs fetched for ${imageDigest} has sha256 ${fetched.sha256}, but the grant pins ${pinned}; it was discarded`);
    }
    await writeFile(
      join(this.options.dir, `${hex}.json`),
      `${JSON.stringify({ digest: imageDigest, sha256: fetched.sha256, sizeBytes: fetched.sizeBytes })}\n`,
      { mode: 0o600 },
    );
    const entry: Entry = { digest: imageDigest, path, sizeBytes: fetched.sizeBytes, sha256: fetched.sha256, lastUsedMs: Date.now(), refs: 0, verified: true };
    this.entries.set(imageDigest, entry);
    this.options.log.info({ image: imageDigest, bytes: fetched.sizeBytes, ms: Math.round(performance.now() - started) }, 'rootfs fetched');
    await this.evict();
    return { entry, fetched: true };
  }

  /** Re-hashes a file an earlier process fetched; false (and the file removed) when it changed. */
  private async verify(entry: Entry): Promise<boolean> {
    const actual = await sha256File(entry.path).catch(() => 'unreadable');
    if (actual === entry.sha256) {
      entry.verified = true;
      return true;
    }
    this.options.log.warn({ image: entry.digest, expected: entry.sha256, actual }, 'cached rootfs changed on disk; fetching it again');
    if (this.entries.get(entry.digest) === entry && entry.refs === 0) {
      this.entries.delete(entry.digest);
      await this.removeFiles(hexOf(entry.digest));
    }
    return false;
  }

  private async evict(): Promise<void> {
    let used = this.usedBytes;
    while (used > this.options.maxBytes) {
      const idle = [...this.entries.values()].filter((e) => e.refs === 0 && !this.inFlight.has(e.digest));
      const oldest = idle.sort((a, b) => a.lastUsedMs - b.lastUsedMs)[0];
      if (oldest === undefined) {
        this.options.log.warn({ usedBytes: used, maxBytes: this.options.maxBytes }, 'rootfs cache is over its limit, but every image in it is in use');
        return;
      }
      this.entries.delete(oldest.digest);
      used -= oldest.sizeBytes;
      await this.removeFiles(hexOf(oldest.digest));
      this.options.log.info({ image: oldest.digest, bytes: oldest.sizeBytes }, 'rootfs evicted (least recently used)');
    }
  }

  private async removeFiles(hex: string): Promise<void> {
    await rm(join(this.options.dir, `${hex}.ext4`), { force: true });
    await rm(join(this.options.dir, `${hex}.json`), { force: true });
  }
}

function hexOf(imageDigest: string): string {
  const hex = DIGEST.exec(imageDigest)?.[1];
  if (hex === undefined) throw new Error(`image digest ${JSON.stringify(imageDigest.slice(0, 80))} is not sha256:<64 lowercase hex>`);
  return hex;
}

async function readMeta(path: string): Promise<{ digest: string; sha256: string; sizeBytes: number } | undefined> {
  try {
    const meta = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    if (typeof meta.digest === 'string' && typeof meta.sha256 === 'string' && typeof meta.sizeBytes === 'number') {
      return { digest: meta.digest, sha256: meta.sha256, sizeBytes: meta.sizeBytes };
    }
  } catch {
    // Missing or torn: the image is fetched again.
  }
  return undefined;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
