import type { BlobReader } from '../store/blob-store.js';
import type { ArchiveContents } from './archive-reader.js';
import type { Descriptor } from './descriptor.js';
import { ImageFormatError, PlatformNotFoundError } from './errors.js';
import { checkImage } from './image-check.js';
import { MAX_CONFIG_BYTES, parseImageConfig } from './image-config.js';
import type { ImportedImage } from './imported-image.js';
import { JsonObject, parseJson } from './json-check.js';
import { MAX_MANIFEST_BYTES, parseManifest, parseManifestOrIndex } from './manifest.js';
import { isIndexType, isManifestType, MediaType } from './media-types.js';
import { formatPlatform, type Platform, platformScore } from './platform.js';
import { readSmallBlob } from './read-blob.js';

const MAX_INDEX_DEPTH = 4;
const TAG_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'];

interface Candidate {
  desc: Descriptor;
  platform?: Platform;
  /** Which entry of index.json it came from: two entries are two images. */
  top: number;
  tags: string[];
  indexDigest?: string;
}

/** Picks the image for `wanted` from an OCI image layout and checks it. */
export async function resolveOciLayout(contents: ArchiveContents, blobs: BlobReader, wanted: Platform): Promise<ImportedImage> {
  const layout = contents.metadata.get('oci-layout');
  const indexBytes = contents.metadata.get('index.json');
  if (!layout || !indexBytes) throw new ImageFormatError('not an OCI image layout: oci-layout or index.json is missing');
  const version = JsonObject.from(parseJson(layout, 'oci-layout'), 'oci-layout').string('imageLayoutVersion');
  if (!/^1\.\d+\.\d+$/.test(version)) throw new ImageFormatError(`unsupported OCI image layout version ${version}`);
  const index = parseManifestOrIndex(indexBytes, MediaType.OciIndex);
  if (index.kind !== 'index') throw new ImageFormatError('index.json is not an image index');

  const candidates: Candidate[] = [];
  for (const [top, desc] of index.manifests.entries()) {
    const tags = TAG_ANNOTATIONS.map((a) => desc.annotations[a])
      .filter((t): t is string => !!t)
      .slice(0, 1);
    await collect(blobs, desc, top, tags, undefined, 0, candidates);
  }
  for (const c of candidates) c.platform ??= await platformFromConfig(blobs, c.desc);

  const chosen = choose(candidates, wanted);
  const checked = await checkImage(blobs, chosen.desc.digest, chosen.desc.mediaType, chosen.desc.size);
  const { manifest, config } = checked;
  return {
    manifestDigest: chosen.desc.digest,
    manifestSize: checked.manifestSize,
    manifest,
    configDigest: manifest.config.digest,
    config: config.runtime,
    ...(config.created ? { created: config.created } : {}),
    layers: manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
    diffIds: config.diffIds,
    platform: config.platform,
    tags: chosen.tags,
    format: 'oci',
    ...(chosen.indexDigest ? { indexDigest: chosen.indexDigest } : {}),
  };
}

async function collect(
  blobs: BlobReader,
  desc: Descriptor,
  top: number,
  tags: string[],
  indexDigest: string | undefined,
  depth: number,
  out: Candidate[],
): Promise<void> {
  if (desc.annotations['vnd.docker.reference.type'] === 'attestation-manifest') return;
  if (isManifestType(desc.mediaType)) {
    out.push({ desc, ...(desc.platform ? { platform: desc.platform } : {}), top, tags, ...(indexDigest ? { indexDigest } : {}) });
    return;
  }
  if (!isIndexType(desc.mediaType)) return; // artifacts and other content are not images
  if (depth >= MAX_INDEX_DEPTH) throw new ImageFormatError(`image indexes nested deeper than ${MAX_INDEX_DEPTH} levels`);
  const bytes = await readSmallBlob(blobs, desc.digest, 'image index', MAX_MANIFEST_BYTES, desc.size);
  const nested = parseManifestOrIndex(bytes, desc.mediaType);
  if (nested.kind !== 'index') throw new ImageFormatError(`${desc.digest} is referenced as an index but is a manifest`);
  for (const m of nested.manifests) await collect(blobs, m, top, tags, desc.digest, depth + 1, out);
}

async function platformFromConfig(blobs: BlobReader, desc: Descriptor): Promise<Platform> {
  const manifest = parseManifest(await readSmallBlob(blobs, desc.digest, 'manifest', MAX_MANIFEST_BYTES, desc.size), desc.mediaType);
  const config = await readSmallBlob(blobs, manifest.config.digest, 'image config', MAX_CONFIG_BYTES, manifest.config.size);
  return parseImageConfig(config).platform;
}

function choose(candidates: Candidate[], wanted: Platform): Candidate {
  let best = 0;
  for (const c of candidates) best = Math.max(best, c.platform ? platformScore(wanted, c.platform) : 0);
  const winners = candidates.filter((c) => c.platform && platformScore(wanted, c.platform) === best);
  const first = winners[0];
  if (best === 0 || !first) {
    throw new PlatformNotFoundError(formatPlatform(wanted), [...new Set(candidates.map((c) => (c.platform ? formatPlatform(c.platform) : '?')))]);
  }
  const distinct = new Set(winners.map((c) => c.desc.digest));
  if (distinct.size > 1 && new Set(winners.map((c) => c.top)).size > 1) {
    throw new ImageFormatError(`the archive holds ${distinct.size} different images for ${formatPlatform(wanted)}; import an archive with one image`);
  }
  return first;
}
