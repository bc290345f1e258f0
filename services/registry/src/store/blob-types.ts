import type { Readable } from 'node:stream';
import type { BlobInfo, BlobSource } from './verified-write.js';

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

/** Where a staging area publishes to: a reader that can take a verified file under its digest. */
export interface BlobPublisher extends BlobReader {
  publish(file: string, digest: string): Promise<boolean>;
}
