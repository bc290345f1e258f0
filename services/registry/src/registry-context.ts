import type { GrantVerifier } from '@shellwego/kit/grant';
import type { Logger } from '@shellwego/kit/log';
import type { ImageCatalog, ImageRecord } from './image-catalog.js';
import type { InUse } from './in-use.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { RootfsBuilder, RootfsImage } from './rootfs/rootfs-builder.js';
import type { BlobStore } from './store/blob-store.js';

/** What the registry's operations share. */
export interface RegistryContext {
  readonly store: BlobStore;
  readonly builder: RootfsBuilder;
  readonly catalog: ImageCatalog;
  /** Blobs an import, pull or build is using. */
  readonly blobsInUse: InUse;
  /** Images whose rootfs an import, build or fetch is using. */
  readonly imagesInUse: InUse;
  readonly verifier: GrantVerifier;
  readonly logger: Logger;
  /** Default platform for multi-platform images. */
  readonly platform: string;
  readonly maxImportBytes: number;
  readonly gcGraceMs: number;
  readonly pullTimeoutMs: number;
  readonly metrics: RegistryMetrics;
}

/** What the rootfs builder needs of a stored image. */
export function rootfsImageOf(image: ImageRecord): RootfsImage {
  return {
    manifestDigest: image.digest,
    layers: image.layers,
    diffIds: image.diffIds,
    ...(image.imageCreated ? { created: image.imageCreated } : {}),
  };
}
