import { link, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isErrno } from '@shellwego/kit/errors';
import { openBlobFile } from './blob-file.js';
import type { IngestResult } from './blob-types.js';
import { digestHex, isDigest } from './digest.js';
import { type BlobInfo, type BlobSource, writeVerified } from './verified-write.js';

/**
 * A directory of immutable files named by the hex of their sha256: the store's blobs and a
 * staging area's are both one. Files arrive only by hard link from a verified temp file on the
 * same file system, so a name never points at partial or unverified content.
 */
export class DigestDir {
  constructor(readonly dir: string) {}

  path(digest: string): string {
    return join(this.dir, digestHex(digest));
  }

  /** Writes `source` to `tmp` verified, publishes it under its digest and removes `tmp`. */
  async ingest(source: BlobSource, tmp: string, expectedDigest?: string, expectedSize?: number): Promise<IngestResult> {
    try {
      const info = await writeVerified(source, tmp, expectedDigest, expectedSize);
      return { ...info, created: await this.link(tmp, info.digest) };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      return { digest, size: (await stat(this.path(digest))).size };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** Throws BlobNotFoundError when absent. */
  open(digest: string, start?: number): Promise<Readable> {
    return openBlobFile(this.path(digest), digest, start);
  }

  /**
   * Publishes a verified, fsynced file under `digest`. A hard link never replaces an existing
   * name, so when two writers race with the same content exactly one publishes and the other
   * learns it was a duplicate (false). The caller still owns (and removes) `file`.
   */
  async link(file: string, digest: string): Promise<boolean> {
    try {
      await link(file, this.path(digest));
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false;
      throw err;
    }
    await fsyncDir(this.dir);
    return true;
  }

  /** Returns false when the blob was not there. */
  async remove(digest: string): Promise<boolean> {
    try {
      await unlink(this.path(digest));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** The digests present. */
  async digests(): Promise<string[]> {
    return (await readdir(this.dir)).map((name) => `sha256:${name}`).filter(isDigest);
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
