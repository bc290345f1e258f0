import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStaging } from './blob-staging.js';
import type { BlobInfo, BlobPublisher, BlobSource, BlobWriter, IngestResult, OpenOptions } from './blob-types.js';
import { DigestDir } from './digest-dir.js';

export type { BlobInfo, BlobReader, BlobSource, BlobWriter, IngestResult, OpenOptions } from './blob-types.js';

/**
 * Content-addressed blob store: `<root>/blobs/sha256/<hex>`, temp files in
 * `<root>/tmp` (same file system, so publishing is an atomic link). Blobs are
 * immutable once published; identical content is stored once.
 */
export class BlobStore implements BlobWriter, BlobPublisher {
  readonly tmpDir: string;
  private readonly blobs: DigestDir;

  private constructor(readonly root: string) {
    this.blobs = new DigestDir(join(root, 'blobs', 'sha256'));
    this.tmpDir = join(root, 'tmp');
  }

  static async open(root: string): Promise<BlobStore> {
    const store = new BlobStore(root);
    await mkdir(store.blobsDir, { recursive: true, mode: 0o755 });
    await mkdir(store.tmpDir, { recursive: true, mode: 0o700 });
    return store;
  }

  get blobsDir(): string {
    return this.blobs.dir;
  }

  path(digest: string): string {
    return this.blobs.path(digest);
  }

  ingest(source: BlobSource, expectedDigest?: string, expectedSize?: number): Promise<IngestResult> {
    return this.blobs.ingest(source, this.tempPath('ingest'), expectedDigest, expectedSize);
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  stat(digest: string): Promise<BlobInfo | undefined> {
    return this.blobs.stat(digest);
  }

  open(digest: string, options: OpenOptions = {}): Promise<Readable> {
    return this.blobs.open(digest, options.start);
  }

  /** Returns false when the blob was not there. */
  remove(digest: string): Promise<boolean> {
    return this.blobs.remove(digest);
  }

  async *list(): AsyncGenerator<BlobInfo> {
    for (const digest of await this.blobs.digests()) {
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

  /** Publishes a verified, fsynced file under `digest`; false when it was already there. */
  publish(file: string, digest: string): Promise<boolean> {
    return this.blobs.link(file, digest);
  }

  /** A fresh name in the store's temp dir. */
  tempPath(prefix: string): string {
    return join(this.tmpDir, `${prefix}-${randomUUID()}`);
  }
}
