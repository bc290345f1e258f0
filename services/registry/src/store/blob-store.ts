import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { openBlobFile, isNotFound } from './blob-file.js';
import { BlobStaging } from './blob-staging.js';
import { digestHex, isDigest } from './digest.js';
import { writeVerified, type BlobInfo, type BlobSource } from './verified-write.js';

export type { BlobInfo, BlobSource } from './verified-write.js';

export interface IngestResult extends BlobInfo {
  /** False when identical content was already there (deduplicated). */
  created: boolean;
}

export interface OpenOptions {
  /** Byte offset to start reading at. */
  start?: number;
}

/** Read access to content-addressed blobs; the rootfs builder and importers depend only on this. */
export interface BlobReader {
  has(digest: string): Promise<boolean>;
  stat(digest: string): Promise<BlobInfo | undefined>;
  /** Throws BlobNotFoundError when absent. */
  open(digest: string, options?: OpenOptions): Promise<Readable>;
}

export interface BlobWriter extends BlobReader {
  /**
   * Stores `source`, verifying it against `expectedDigest` / `expectedSize`
   * when given. On any failure nothing is left behind.
   */
  ingest(source: BlobSource, expectedDigest?: string, expectedSize?: number): Promise<IngestResult>;
}

/**
 * Content-addressed blob store: `<root>/blobs/sha256/<hex>`, temp files in
 * `<root>/tmp` (same file system, so publishing is an atomic link). Blobs are
 * immutable once published; identical content is stored once.
 */
export class BlobStore implements BlobWriter {
  readonly blobsDir: string;
  readonly tmpDir: string;

  private constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'tmp');
  }

  static async open(root: string): Promise<BlobStore> {
    const store = new BlobStore(root);
    await mkdir(store.blobsDir, { recursive: true, mode: 0o755 });
    await mkdir(store.tmpDir, { recursive: true, mode: 0o700 });
    return store;
  }

  path(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  async ingest(source: BlobSource, expectedDigest?: string, expectedSize?: number): Promise<IngestResult> {
    const tmp = this.tempPath('ingest');
    try {
      const info = await writeVerified(source, tmp, expectedDigest, expectedSize);
      const created = await this.publish(tmp, info.digest);
      return { ...info, created };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.path(digest));
      return { digest, size: st.size };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async open(digest: string, options: OpenOptions = {}): Promise<Readable> {
    return openBlobFile(this.path(digest), digest, options.start);
  }

  /** Returns false when the blob was not there. */
  async remove(digest: string): Promise<boolean> {
    try {
      await unlink(this.path(digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async *list(): AsyncGenerator<BlobInfo> {
    for (const name of await readdir(this.blobsDir)) {
      const digest = `sha256:${name}`;
      if (!isDigest(digest)) continue;
      const info = await this.stat(digest);
      if (info) yield info;
    }
  }

  /**
   * A private area for a multi-blob operation (an import): nothing in it is
   * visible in the store until `commit`, and `abort` leaves no trace.
   */
  async stage(): Promise<BlobStaging> {
    const dir = this.tempPath('stage');
    await mkdir(dir, { mode: 0o700 });
    return new BlobStaging(this, dir);
  }

  /**
   * Removes temp files and abandoned staging areas older than `olderThanMs`
   * (left by a crash); younger ones may belong to a running operation.
   */
  async sweepTemp(olderThanMs = 24 * 3600_000): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const name of await readdir(this.tmpDir)) {
      const full = join(this.tmpDir, name);
      const st = await stat(full).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) {
        await rm(full, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }

  /**
   * Publishes a verified, fsynced file under `digest`. A hard link never
   * replaces an existing name, so when two writers race with the same
   * content exactly one publishes and the other learns it was a duplicate.
   * The caller still owns (and removes) `file`.
   */
  async publish(file: string, digest: string): Promise<boolean> {
    try {
      await link(file, this.path(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    await fsyncDir(this.blobsDir);
    return true;
  }

  /** A fresh name in the store's temp dir. */
  tempPath(prefix: string): string {
    return join(this.tmpDir, `${prefix}-${randomUUID()}`);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
