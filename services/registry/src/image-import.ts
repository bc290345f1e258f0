import { Readable } from 'node:stream';
import type { ImageRecord } from './image-catalog.js';
import { parseNameTag, type TagReference } from './image-reference.js';
import { type ArchiveFormat, importArchive } from './oci/archive-import.js';
import { type ImportedImage, imageBlobDigests } from './oci/imported-image.js';
import type { RegistryContext } from './registry-context.js';
import { ByteLimit } from './size-limit.js';

export interface ImportRequest {
  /** The archive bytes, in order. */
  archive: AsyncIterable<Uint8Array>;
  /** Tag to give the image; else the archive's own name:tag entries. */
  name?: TagReference;
  format: ArchiveFormat;
  /** os/arch[/variant]; empty means the service's default. */
  platform: string;
}

/**
 * Imports an image archive: every blob is verified while it streams into a
 * private staging area, the rootfs is built from there (which applies and
 * so vets every layer), and only then are the image's blobs published and
 * the image recorded. Any failure leaves nothing in the store.
 */
export async function importImage(ctx: RegistryContext, request: ImportRequest): Promise<ImageRecord> {
  const limit = new ByteLimit(ctx.maxImportBytes, 'the archive', 'SHELLWEGO_REGISTRY_MAX_IMPORT_BYTES');
  const source = Readable.from(limit.pass(request.archive), { objectMode: false });
  const stage = await ctx.store.stage();
  let releaseImage: (() => void) | undefined;
  let releaseBlobs: (() => void) | undefined;
  try {
    const image = await importArchive(source, stage, { format: request.format, platform: request.platform || ctx.platform });
    releaseImage = ctx.imagesInUse.hold([image.manifestDigest]);
    const rootfs = await ctx.builder.build(image, stage);
    releaseBlobs = ctx.blobsInUse.hold(imageBlobDigests(image));
    await stage.commit(imageBlobDigests(image));
    const record = await ctx.catalog.record(image, { source: `import ${image.format}`, tags: tagsFor(image, request.name), rootfs });
    ctx.logger.info({ image: record.digest, tags: record.tags, format: image.format, layers: image.layers.length }, 'image imported');
    return record;
  } catch (err) {
    // The archive reader reports a failed source as an unreadable archive; the real reason is the size.
    throw limit.exceeded ?? err;
  } finally {
    // After a commit this only removes the (already emptied) staging directory.
    await stage.abort();
    source.destroy();
    releaseBlobs?.();
    releaseImage?.();
  }
}

/** The given name, or the archive's own names that are valid name:tag references. */
function tagsFor(image: ImportedImage, name: TagReference | undefined): TagReference[] {
  if (name) return [name];
  const tags: TagReference[] = [];
  for (const tag of image.tags) {
    // OCI ref.name annotations are often a bare tag ("1.36"): without a name there is nothing to store it under.
    if (!tag.includes(':')) continue;
    try {
      tags.push(parseNameTag(tag));
    } catch {}
  }
  return tags;
}
