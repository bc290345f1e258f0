import type { BlobReader } from '../store/blob-store.js';
import { ImageFormatError } from './errors.js';
import { type ImageConfig, MAX_CONFIG_BYTES, parseImageConfig } from './image-config.js';
import { assertRunnableImage, type ImageManifest, MAX_MANIFEST_BYTES, parseManifest } from './manifest.js';
import { readSmallBlob } from './read-blob.js';

export interface CheckedImage {
  manifest: ImageManifest;
  manifestSize: number;
  config: ImageConfig;
}

/**
 * Loads an image manifest and its config from `blobs` and checks that the
 * image is complete and consistent: the config and every layer are present
 * with the sizes the manifest says (their digests were verified when they
 * were stored), and there is one diff_id per layer.
 */
export async function checkImage(blobs: BlobReader, manifestDigest: string, declaredMediaType?: string, declaredSize?: number): Promise<CheckedImage> {
  const bytes = await readSmallBlob(blobs, manifestDigest, 'manifest', MAX_MANIFEST_BYTES, declaredSize);
  const manifest = parseManifest(bytes, declaredMediaType);
  assertRunnableImage(manifest);
  const configBytes = await readSmallBlob(blobs, manifest.config.digest, 'image config', MAX_CONFIG_BYTES, manifest.config.size);
  const config = parseImageConfig(configBytes);
  if (config.diffIds.length !== manifest.layers.length) {
    throw new ImageFormatError(
      `image ${manifestDigest}: the manifest has ${manifest.layers.length} layers but the config lists ${config.diffIds.length} diff_ids`,
    );
  }
  for (const [i, layer] of manifest.layers.entries()) {
    const info = await blobs.stat(layer.digest);
    if (!info) throw new ImageFormatError(`layer ${i} (${layer.digest}) of image ${manifestDigest} is missing`);
    if (info.size !== layer.size) {
      throw new ImageFormatError(`layer ${i} (${layer.digest}) is ${info.size} bytes but the manifest says ${layer.size}`);
    }
  }
  return { manifest, manifestSize: bytes.length, config };
}
