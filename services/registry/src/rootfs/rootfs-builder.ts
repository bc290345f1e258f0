import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '@shellwego/kit/errors';
import type { LayerRef } from '../oci/imported-image.js';
import type { BlobReader } from '../store/blob-store.js';
import { digestHex, isDigest } from '../store/digest.js';
import { buildExt4, type Ext4Result } from './ext4-build.js';
import { type ApplyLimits, type ApplyResult, applyLayers } from './layer-apply.js';
import type { OwnershipMode } from './tree-writer.js';

/** What a rootfs is built from; an ImportedImage fits. */
export interface RootfsImage {
  manifestDigest: string;
  layers: readonly LayerRef[];
  /** Checked against each uncompressed layer when given. */
  diffIds?: readonly string[];
  /** RFC 3339; becomes the file system's timestamps so rebuilds are byte-identical. */
  created?: string;
}

/** A built root file system in the cache. */
export interface RootfsArtifact {
  imageDigest: string;
  path: string;
  sizeBytes: number;
  /** sha256 of the ext4 file ("sha256:<hex>"), what FetchRootfs sends last. */
  sha256: string;
}

export type RootfsEvent =
  | { type: 'cache-hit' | 'coalesced'; imageDigest: string }
  | { type: 'build-start'; imageDigest: string }
  | { type: 'build-done'; imageDigest: string; ms: number; apply: ApplyResult; ext4: Ext4Result }
  | { type: 'build-failed'; imageDigest: string; ms: number; error: unknown };

export interface RootfsBuilderOptions {
  cacheDir: string;
  limits?: Partial<ApplyLimits>;
  headroomPercent?: number;
  minHeadroomMiB?: number;
  ownership?: OwnershipMode;
  /** Builds of different images running at once; more wait. Default 2. */
  maxConcurrentBuilds?: number;
  /** For logs and metrics (a failed build's error is also thrown to every caller). */
  onEvent?: (event: RootfsEvent) => void;
}

const EXT4_SUFFIX = '.ext4';
const SHA_SUFFIX = '.ext4.sha256';
/** A build temp dir untouched this long belongs to a dead process. */
const STALE_TEMP_MS = 6 * 3600_000;

/**
 * Builds ext4 root file systems from images and caches them by image
 * digest: `<cacheDir>/<hex>.ext4` with its sha256 in `<hex>.ext4.sha256`.
 * Concurrent requests for one digest share a single build. Each build works
 * in its own temp dir under `<cacheDir>/tmp`, removed afterwards whether it
 * succeeded or not; results appear by atomic rename, sha256 file first, so
 * an `.ext4` in the cache is always complete.
 */
export class RootfsBuilder {
  private readonly inflight = new Map<string, Promise<RootfsArtifact>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly tmpDir: string;

  private constructor(private readonly options: RootfsBuilderOptions) {
    this.tmpDir = join(options.cacheDir, 'tmp');
  }

  /**
   * Opens the cache, removing temp dirs a crashed process left behind (only
   * old ones: another replica sharing the cache may be building right now).
   */
  static async open(options: RootfsBuilderOptions): Promise<RootfsBuilder> {
    const builder = new RootfsBuilder(options);
    await mkdir(builder.tmpDir, { recursive: true, mode: 0o700 });
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of await readdir(builder.tmpDir)) {
      const st = await stat(join(builder.tmpDir, name)).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) await rm(join(builder.tmpDir, name), { recursive: true, force: true });
    }
    return builder;
  }

  /** The cached rootfs of `image`, building it (once, however many callers ask) when missing. */
  async build(image: RootfsImage, blobs: BlobReader): Promise<RootfsArtifact> {
    const digest = image.manifestDigest;
    const hex = digestHex(digest);
    const pending = this.inflight.get(hex);
    if (pending) {
      this.emit({ type: 'coalesced', imageDigest: digest });
      return pending;
    }
    const cached = await this.lookup(digest);
    if (cached) {
      this.emit({ type: 'cache-hit', imageDigest: digest });
      return cached;
    }
    // Re-check: another caller may have started while we looked.
    const raced = this.inflight.get(hex);
    if (raced) {
      this.emit({ type: 'coalesced', imageDigest: digest });
      return raced;
    }
    const build = this.withSlot(() => this.buildNow(image, blobs)).finally(() => this.inflight.delete(hex));
    this.inflight.set(hex, build);
    return build;
  }

  /** True while a build of `imageDigest` runs (garbage collection must leave it alone). */
  isBuilding(imageDigest: string): boolean {
    return this.inflight.has(digestHex(imageDigest));
  }

  async lookup(imageDigest: string): Promise<RootfsArtifact | undefined> {
    const hex = digestHex(imageDigest);
    const path = join(this.options.cacheDir, `${hex}${EXT4_SUFFIX}`);
    try {
      const [st, sha] = await Promise.all([stat(path), readFile(join(this.options.cacheDir, `${hex}${SHA_SUFFIX}`), 'utf8')]);
      const sha256 = sha.trim();
      if (!isDigest(sha256)) return undefined;
      return { imageDigest, path, sizeBytes: st.size, sha256 };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** Image digests with a cached rootfs. */
  async cached(): Promise<string[]> {
    const names = await readdir(this.options.cacheDir);
    return names
      .filter((n) => n.endsWith(EXT4_SUFFIX))
      .map((n) => `sha256:${n.slice(0, -EXT4_SUFFIX.length)}`)
      .filter(isDigest);
  }

  /** Drops a cached rootfs (image first, so a half-removed entry is never a hit). */
  async remove(imageDigest: string): Promise<boolean> {
    const hex = digestHex(imageDigest);
    const existed = await stat(join(this.options.cacheDir, `${hex}${EXT4_SUFFIX}`)).then(
      () => true,
      () => false,
    );
    await rm(join(this.options.cacheDir, `${hex}${EXT4_SUFFIX}`), { force: true });
    await rm(join(this.options.cacheDir, `${hex}${SHA_SUFFIX}`), { force: true });
    return existed;
  }

  private async buildNow(image: RootfsImage, blobs: BlobReader): Promise<RootfsArtifact> {
    const digest = image.manifestDigest;
    const hex = digestHex(digest);
    const started = Date.now();
    this.emit({ type: 'build-start', imageDigest: digest });
    const work = await mkdtemp(join(this.tmpDir, `${hex.slice(0, 16)}-`));
    try {
      const tree = join(work, 'tree');
      await mkdir(tree, { mode: 0o755 });
      const layers = image.layers.map((layer, i) => ({
        digest: layer.digest,
        ...(image.diffIds?.[i] ? { diffId: image.diffIds[i] } : {}),
        open: () => blobs.open(layer.digest),
      }));
      const apply = await applyLayers(layers, tree, {
        ...(this.options.limits ? { limits: this.options.limits } : {}),
        ...(this.options.ownership ? { ownership: this.options.ownership } : {}),
      });
      const imageFile = join(work, 'rootfs.ext4');
      const ext4 = await buildExt4(tree, imageFile, {
        seed: digest,
        timestamp: createdSeconds(image.created),
        ...(apply.owners ? { owners: apply.owners } : {}),
        ...(this.options.headroomPercent !== undefined ? { headroomPercent: this.options.headroomPercent } : {}),
        ...(this.options.minHeadroomMiB !== undefined ? { minHeadroomMiB: this.options.minHeadroomMiB } : {}),
        tempPrefix: join(work, 'mkfs'),
      });
      await rm(tree, { recursive: true, force: true });
      const sha256 = await sha256File(imageFile);
      const shaTmp = join(work, 'sha256');
      await writeFile(shaTmp, `${sha256}\n`);
      await rename(shaTmp, join(this.options.cacheDir, `${hex}${SHA_SUFFIX}`));
      const path = join(this.options.cacheDir, `${hex}${EXT4_SUFFIX}`);
      await rename(imageFile, path);
      this.emit({ type: 'build-done', imageDigest: digest, ms: Date.now() - started, apply, ext4 });
      return { imageDigest: digest, path, sizeBytes: ext4.sizeBytes, sha256 };
    } catch (error) {
      this.emit({ type: 'build-failed', imageDigest: digest, ms: Date.now() - started, error });
      throw error;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    const max = this.options.maxConcurrentBuilds ?? 2;
    while (this.running >= max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private emit(event: RootfsEvent): void {
    this.options.onEvent?.(event);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function createdSeconds(created: string | undefined): number {
  const ms = created ? Date.parse(created) : NaN;
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
}
