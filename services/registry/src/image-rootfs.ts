import type { ImageRecord } from './image-catalog.js';
import { type RegistryContext, rootfsImageOf } from './registry-context.js';
import type { RootfsArtifact } from './rootfs/rootfs-builder.js';

/**
 * The built rootfs of a stored image (from the cache, else built while its
 * blobs are held against garbage collection), with its sha256 recorded when
 * none was yet. The caller holds the image itself.
 */
export async function imageRootfs(ctx: RegistryContext, image: ImageRecord): Promise<RootfsArtifact> {
  const releaseBlobs = ctx.blobsInUse.hold([image.digest, image.configDigest, ...image.layers.map((l) => l.digest)]);
  let artifact: RootfsArtifact;
  try {
    artifact = await ctx.builder.build(rootfsImageOf(image), ctx.store);
  } finally {
    releaseBlobs();
  }
  await ctx.catalog.recordRootfs(image.digest, artifact.sha256, artifact.sizeBytes);
  return artifact;
}
