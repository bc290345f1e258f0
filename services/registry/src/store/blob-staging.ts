import { randomUUID } from 'node:crypto';
import { link, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobInfo, BlobSource, BlobStore, BlobWriter, IngestResult, OpenOptions } from './blob-store.js';
import { openBlobFile, isNotFound } from './blob-file.js';
import { digestHex, isDigest } from './digest.js';
import { BlobNotFoundError } from './errors.js';
import { writeVerified } from './verified-write.js';

/**
 * Blobs written for one operation, kept apart from the store until the
 * operation has verified everything. Reads see staged blobs first, then the
 * store. Create with `BlobStore.stage()`.
 */
export class BlobStaging implements BlobWriter {
  private closed = false;

  constructor(
    private readonly store: BlobStore,
    readonly dir: string,
  ) {}

  async ingest(source: BlobSource, expectedDigest?: string, expectedSize?: number): Promise<IngestResult> {
    this.assertOpen();
    const tmp = join(this.dir, `ingest-${randomUUID()}`);
    try {
      const info = await writeVerified(source, tmp, expectedDigest, expectedSize);
      let created = true;
      try {
        await link(tmp, this.stagedPath(info.digest));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        created = false;
      }
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
      const st = await stat(this.stagedPath(digest));
      return { digest, size: st.size };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return this.store.stat(digest);
  }

  async open(digest: string, options: OpenOptions = {}): Promise<Readable> {
    try {
      return await openBlobFile(this.stagedPath(digest), digest, options.start);
    } catch (err) {
      if (!(err instanceof BlobNotFoundError)) throw err;
    }
    return this.store.open(digest, options);
  }

  /** Digests written into this staging area so far. */
  async staged(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }

  /**
   * Publishes `keep` (default: everything staged) into the store and removes
   * the staging area; staged blobs not in `keep` are dropped. Every digest in
   * `keep` must be staged or already stored. Returns the digests that were
   * new to the store.
   */
  async commit(keep?: Iterable<string>): Promise<string[]> {
    this.assertOpen();
    const wanted = keep ? [...new Set(keep)] : await this.staged();
    const created: string[] = [];
    try {
      for (const digest of wanted) {
        const staged = this.stagedPath(digest);
        const present = await stat(staged).then(
          () => true,
          (err: unknown) => {
            if (isNotFound(err)) return false;
            throw err;
          },
        );
        if (present) {
          if (await this.store.publish(staged, digest)) created.push(digest);
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

  private stagedPath(digest: string): string {
    return join(this.dir, digestHex(digest));
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('staging area already committed or aborted');
  }
}
