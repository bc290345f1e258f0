import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobInfo, BlobPublisher, BlobSource, BlobWriter, IngestResult, OpenOptions } from './blob-types.js';
import { DigestDir } from './digest-dir.js';
import { BlobNotFoundError } from './errors.js';

/**
 * Blobs written for one operation, kept apart from the store until the
 * operation has verified everything. Reads see staged blobs first, then the
 * store. Create with `BlobStore.stage()`.
 */
export class BlobStaging implements BlobWriter {
  private closed = false;
  private readonly area: DigestDir;

  constructor(
    private readonly store: BlobPublisher,
    readonly dir: string,
  ) {
    this.area = new DigestDir(dir);
  }

  async ingest(source: BlobSource, expectedDigest?: string, expectedSize?: number): Promise<IngestResult> {
    this.assertOpen();
    return this.area.ingest(source, join(this.dir, `ingest-${randomUUID()}`), expectedDigest, expectedSize);
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    return (await this.area.stat(digest)) ?? this.store.stat(digest);
  }

  async open(digest: string, options: OpenOptions = {}): Promise<Readable> {
    try {
      return await this.area.open(digest, options.start);
    } catch (err) {
      if (!(err instanceof BlobNotFoundError)) throw err;
    }
    return this.store.open(digest, options);
  }

  /** Digests written into this staging area so far. */
  staged(): Promise<string[]> {
    return this.area.digests();
  }

  /**
   * Publishes `keep` (default: everything staged) into the store and removes
   * the staging area; staged blobs not in `keep` are dropped. Every digest in
   * `keep` must be staged or already stored. Returns the digests that were
   * new to the store.
   */
  async commit(keep?: Iterable<string>): Promise<string[]> {
    this.assertOpen();
    const wanted = keep ? [...new Set(keep)] : await this.area.digests();
    const created: string[] = [];
    try {
      for (const digest of wanted) {
        if ((await this.area.stat(digest)) !== undefined) {
          if (await this.store.publish(this.area.path(digest), digest)) created.push(digest);
        } else if (!(await this.store.has(digest))) {
          throw new BlobNotFoundError(digest);
        }
      }
    } finally {
      await this.abort();
    }
    return created;
  }

  /** Drops everything staged. Safe to call more than once. */
  async abort(): Promise<void> {
    this.closed = true;
    await rm(this.dir, { recursive: true, force: true });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('staging area already committed or aborted');
  }
}
