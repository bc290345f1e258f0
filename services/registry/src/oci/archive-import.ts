import type { Readable } from 'node:stream';
import type { BlobWriter } from '../store/blob-store.js';
import { type ArchiveLimits, DEFAULT_ARCHIVE_LIMITS, readImageArchive } from './archive-reader.js';
import { resolveDockerArchive } from './docker-archive.js';
import { ImageFormatError } from './errors.js';
import type { ImportedImage } from './imported-image.js';
import { resolveOciLayout } from './oci-layout.js';
import { DEFAULT_PLATFORM, parsePlatform } from './platform.js';

export type ArchiveFormat = 'auto' | 'oci' | 'docker';

export interface ImportOptions {
  /** Which format to read; 'auto' prefers the OCI layout when an archive has both (Docker 25+ writes both). */
  format?: ArchiveFormat;
  /** os/arch[/variant] to pick from a multi-platform image. Default linux/amd64. */
  platform?: string;
  limits?: ArchiveLimits;
}

/**
 * Imports an OCI image layout tar or a `docker save` tar from a stream into
 * `blobs` (use a staging area so a failed import leaves nothing behind, then
 * commit `imageBlobDigests(image)`). Every blob is verified against its
 * digest; the result describes one image for the requested platform.
 *
 * Errors: ImageFormatError (unreadable or inconsistent archive),
 * DigestMismatchError / SizeMismatchError (corrupt blob),
 * PlatformNotFoundError.
 */
export async function importArchive(source: Readable, blobs: BlobWriter, options: ImportOptions = {}): Promise<ImportedImage> {
  const platform = parsePlatform(options.platform || DEFAULT_PLATFORM);
  const contents = await readImageArchive(source, blobs, options.limits ?? DEFAULT_ARCHIVE_LIMITS);
  const format = options.format ?? 'auto';
  const isOci = contents.metadata.has('oci-layout') && contents.metadata.has('index.json');
  const isDocker = contents.metadata.has('manifest.json');
  if (format === 'oci' || (format === 'auto' && isOci)) return resolveOciLayout(contents, blobs, platform);
  if (format === 'docker' || (format === 'auto' && isDocker)) return resolveDockerArchive(contents, blobs, platform);
  throw new ImageFormatError('not an image archive: expected an OCI image layout (oci-layout, index.json) or a docker-archive (manifest.json)');
}
