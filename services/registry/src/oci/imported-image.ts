import type { RuntimeConfig } from './image-config.js';
import type { ImageManifest } from './manifest.js';
import type { Platform } from './platform.js';

/** One layer blob of an image, bottom first. */
export interface LayerRef {
  digest: string;
  mediaType: string;
  size: number;
}

/** An image whose every blob is verified and present in the store (or staging area) it was read into. */
export interface ImportedImage {
  /** The image's identity: the digest of its (possibly synthesised) manifest. */
  manifestDigest: string;
  manifestSize: number;
  manifest: ImageManifest;
  configDigest: string;
  config: RuntimeConfig;
  /** RFC 3339 creation time from the config, when present. */
  created?: string;
  layers: LayerRef[];
  /** Digests of the uncompressed layers (config rootfs.diff_ids), bottom first. */
  diffIds: string[];
  platform: Platform;
  /** Names the archive itself gives the image (RepoTags, ref.name annotations), as written. */
  tags: string[];
  format: 'oci' | 'docker';
  /** The multi-platform index the manifest was picked from, when there was one. */
  indexDigest?: string;
}

/** Every blob the image needs: manifest, config and layers. */
export function imageBlobDigests(image: ImportedImage): string[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}
