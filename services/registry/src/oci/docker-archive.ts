import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { BlobInfo, BlobWriter } from '../store/blob-store.js';
import { DigestMismatchError } from '../store/errors.js';
import type { ArchiveContents } from './archive-reader.js';
import { createDecompressor, detectCompression, peekStream } from './compression.js';
import type { Descriptor } from './descriptor.js';
import { ImageFormatError, PlatformNotFoundError } from './errors.js';
import { checkImage } from './image-check.js';
import { type ImageConfig, MAX_CONFIG_BYTES, parseImageConfig } from './image-config.js';
import type { ImportedImage } from './imported-image.js';
import { JsonObject, parseJson } from './json-check.js';
import { canonicalManifestBytes } from './manifest.js';
import { type LayerCompression, MediaType } from './media-types.js';
import { formatPlatform, type Platform, platformScore } from './platform.js';
import { readSmallBlob } from './read-blob.js';

const LAYER_MEDIA_TYPE: Record<LayerCompression, string> = {
  none: MediaType.OciLayer,
  gzip: MediaType.OciLayerGzip,
  zstd: MediaType.OciLayerZstd,
};

interface DockerEntry {
  config: BlobInfo;
  parsed: ImageConfig;
  tags: string[];
  layers: string[];
}

/**
 * Turns a `docker save` archive into an image: picks the entry of
 * manifest.json for `wanted`, checks each layer against the config's
 * diff_ids, and synthesises a canonical OCI manifest (stored as a blob in
 * `blobs`) whose digest becomes the image's identity.
 */
export async function resolveDockerArchive(contents: ArchiveContents, blobs: BlobWriter, wanted: Platform): Promise<ImportedImage> {
  const raw = contents.metadata.get('manifest.json');
  if (!raw) throw new ImageFormatError('not a docker-archive: manifest.json is missing');
  const list = parseJson(raw, 'manifest.json');
  if (!Array.isArray(list) || list.length === 0) throw new ImageFormatError('manifest.json: expected a non-empty array');

  const entries: DockerEntry[] = [];
  for (const [i, item] of list.entries()) {
    const o = JsonObject.from(item, `manifest.json[${i}]`);
    const configPath = o.string('Config');
    const config = contents.file(configPath);
    if (!config) throw new ImageFormatError(`${o.path('Config')}: ${configPath} is not in the archive`);
    // `docker save` names the config after its digest (the image ID): hold it to that.
    const named = /^([a-f0-9]{64})\.json$/.exec(configPath);
    if (named && `sha256:${named[1]}` !== config.digest) {
      throw new DigestMismatchError(`sha256:${named[1]}`, config.digest);
    }
    const parsed = parseImageConfig(await readSmallBlob(blobs, config.digest, 'image config', MAX_CONFIG_BYTES));
    entries.push({ config, parsed, tags: o.optionalStrings('RepoTags'), layers: o.strings('Layers') });
  }

  const chosen = choose(entries, wanted);
  const { parsed } = chosen;
  if (chosen.layers.length !== parsed.diffIds.length) {
    throw new ImageFormatError(`manifest.json lists ${chosen.layers.length} layers but the image config has ${parsed.diffIds.length} diff_ids`);
  }
  const layers: Descriptor[] = [];
  for (const [i, path] of chosen.layers.entries()) {
    const blob = contents.file(path);
    if (!blob) throw new ImageFormatError(`layer ${path} is listed in manifest.json but not in the archive`);
    const { compression, diffId } = await diffIdOf(blobs, blob.digest);
    if (diffId !== parsed.diffIds[i]) {
      throw new ImageFormatError(`layer ${path} does not match the image config: expected diff_id ${parsed.diffIds[i]}, got ${diffId}`);
    }
    layers.push({ mediaType: LAYER_MEDIA_TYPE[compression], digest: blob.digest, size: blob.size, annotations: {}, urls: [] });
  }

  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: chosen.config.digest, size: chosen.config.size, annotations: {}, urls: [] };
  const stored = await blobs.ingest(canonicalManifestBytes(configDesc, layers));
  const checked = await checkImage(blobs, stored.digest, MediaType.OciManifest, stored.size);
  return {
    manifestDigest: stored.digest,
    manifestSize: stored.size,
    manifest: checked.manifest,
    configDigest: chosen.config.digest,
    config: parsed.runtime,
    ...(parsed.created ? { created: parsed.created } : {}),
    layers: layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
    diffIds: parsed.diffIds,
    platform: parsed.platform,
    tags: chosen.tags,
    format: 'docker',
  };
}

/** The digest of a layer's uncompressed tar; for a plain tar that is the blob's own digest. */
async function diffIdOf(blobs: BlobWriter, digest: string): Promise<{ compression: LayerCompression; diffId: string }> {
  const { head, stream } = await peekStream(await blobs.open(digest), 4);
  const compression = detectCompression(head);
  if (compression === 'none') {
    stream.destroy();
    return { compression, diffId: digest };
  }
  const hash = createHash('sha256');
  await pipeline(stream, createDecompressor(compression), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return { compression, diffId: `sha256:${hash.digest('hex')}` };
}

function choose(entries: DockerEntry[], wanted: Platform): DockerEntry {
  const best = Math.max(...entries.map((e) => platformScore(wanted, e.parsed.platform)));
  const winners = entries.filter((e) => platformScore(wanted, e.parsed.platform) === best);
  const first = winners[0];
  if (best === 0 || !first) {
    throw new PlatformNotFoundError(formatPlatform(wanted), [...new Set(entries.map((e) => formatPlatform(e.parsed.platform)))]);
  }
  if (new Set(winners.map((e) => e.config.digest)).size > 1) {
    throw new ImageFormatError(`the archive holds ${winners.length} different images for ${formatPlatform(wanted)}; save one image per archive`);
  }
  return first;
}
