import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { failedSyscall } from '@shellwego/kit/errors';
import tar from 'tar-stream';
import type { BlobInfo, BlobWriter } from '../store/blob-store.js';
import { DigestMismatchError, InvalidDigestError, SizeMismatchError } from '../store/errors.js';
import { detectCompression, peekStream } from './compression.js';
import { ImageFormatError } from './errors.js';
import { entryChunks, type TarEntry } from './tar-entry.js';

/** The small metadata files of both archive formats, kept in memory. */
const METADATA_FILES = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);
const MAX_METADATA_BYTES = 4 * 1024 * 1024;
const MAX_LINK_HOPS = 16;

export interface ArchiveLimits {
  /** Most tar entries an image archive may have. */
  maxEntries: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = { maxEntries: 100_000 };

/** What an image archive holds once read: metadata in memory, every other file as a verified blob. */
export class ArchiveContents {
  readonly metadata = new Map<string, Buffer>();
  /** Archive path -> the blob holding that file's bytes. */
  readonly files = new Map<string, BlobInfo>();
  /** Archive path -> archive path it links to (symlinks resolved to archive paths, hard links as is). */
  readonly links = new Map<string, string>();

  /** The blob behind an archive path, following links. */
  file(path: string): BlobInfo | undefined {
    let p = normalizeArchivePath(path);
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const f = this.files.get(p);
      if (f) return f;
      const next = this.links.get(p);
      if (next === undefined) return undefined;
      p = next;
    }
    return undefined;
  }
}

/**
 * Reads an image archive tar (optionally gzip-compressed) from a stream.
 * Files under `blobs/sha256/` are verified against their names while they
 * stream into `blobs`; other files are stored under their computed digest
 * (docker-archive layers and configs). Nothing is buffered but the metadata
 * files. Tar order does not matter.
 */
export async function readImageArchive(source: Readable, blobs: BlobWriter, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<ArchiveContents> {
  const { head, stream } = await peekStream(source, 2);
  const input = detectCompression(head) === 'gzip' ? stream.pipe(createGunzip()) : stream;
  if (input !== stream) stream.on('error', (err) => input.destroy(err));

  const contents = new ArchiveContents();
  const extract = tar.extract();
  const feeding = pipeline(input, extract);
  feeding.catch(() => undefined); // surfaced through the iterator below
  let entries = 0;
  try {
    for await (const entry of extract) {
      if (++entries > limits.maxEntries) {
        throw new ImageFormatError(`the archive has more than ${limits.maxEntries} entries`);
      }
      const { header } = entry;
      const name = normalizeArchivePath(header.name);
      switch (header.type) {
        case 'file':
        case 'contiguous-file':
          if (METADATA_FILES.has(name)) contents.metadata.set(name, await readSmall(entry, name));
          else contents.files.set(name, await ingestEntry(entry, name, blobs));
          break;
        case 'symlink':
          contents.links.set(name, normalizeArchivePath(posix.join(posix.dirname(name), header.linkname ?? '')));
          entry.resume();
          break;
        case 'link':
          contents.links.set(name, normalizeArchivePath(header.linkname ?? ''));
          entry.resume();
          break;
        default:
          entry.resume();
      }
    }
    await feeding;
  } catch (err) {
    source.destroy();
    extract.destroy();
    if (
      err instanceof ImageFormatError ||
      err instanceof DigestMismatchError ||
      err instanceof SizeMismatchError ||
      err instanceof InvalidDigestError ||
      failedSyscall(err) !== undefined // the store's disk, not the archive
    ) {
      throw err;
    }
    throw new ImageFormatError(`cannot read the image archive: ${(err as Error).message}`);
  }
  return contents;
}

export function normalizeArchivePath(name: string): string {
  const p = posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '');
  return p.startsWith('./') ? p.slice(2) : p;
}

async function ingestEntry(entry: TarEntry, name: string, blobs: BlobWriter): Promise<BlobInfo> {
  const m = /^blobs\/([^/]+)\/([^/]+)$/.exec(name);
  if (m) {
    if (m[1] !== 'sha256') throw new ImageFormatError(`archive entry ${name}: unsupported digest algorithm ${m[1]} (only sha256)`);
    const digest = `sha256:${m[2]}`;
    const info = await blobs.ingest(entryChunks(entry), digest, entry.header.size);
    return { digest: info.digest, size: info.size };
  }
  const info = await blobs.ingest(entryChunks(entry), undefined, entry.header.size);
  return { digest: info.digest, size: info.size };
}

async function readSmall(entry: TarEntry, name: string): Promise<Buffer> {
  if ((entry.header.size ?? 0) > MAX_METADATA_BYTES) {
    throw new ImageFormatError(`archive entry ${name} is larger than ${MAX_METADATA_BYTES} bytes`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of entryChunks(entry)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
