import { type Descriptor, parseDescriptor } from './descriptor.js';
import { ImageFormatError } from './errors.js';
import { JsonObject, parseJson } from './json-check.js';
import { isIndexType, isManifestType, layerCompression, MediaType } from './media-types.js';

/** An OCI image manifest or Docker v2 schema 2 manifest, normalised. */
export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations: Record<string, string>;
}

/** An OCI image index or Docker manifest list, normalised. */
export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations: Record<string, string>;
}

/** Largest manifest or index accepted (the distribution spec's recommended limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Parses and validates a manifest or an index. `declaredMediaType` is what
 * the referring descriptor or HTTP Content-Type said; it must agree with the
 * document's own `mediaType` when both are present.
 */
export function parseManifestOrIndex(bytes: Uint8Array, declaredMediaType?: string): ImageManifest | ImageIndex {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ImageFormatError(`manifest is ${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
  }
  const o = JsonObject.from(parseJson(bytes, 'manifest'), 'manifest');
  const schemaVersion = o.has('schemaVersion') ? o.integer('schemaVersion') : undefined;
  if (schemaVersion === 1 || declaredMediaType === MediaType.DockerManifestV1 || declaredMediaType === MediaType.DockerManifestV1Signed) {
    throw new ImageFormatError('Docker image manifest schema 1 is not supported; re-push the image with a current Docker or another OCI tool');
  }
  if (schemaVersion !== 2) throw new ImageFormatError('manifest.schemaVersion: expected 2');

  const own = o.optionalString('mediaType');
  if (own !== undefined && declaredMediaType !== undefined && own !== declaredMediaType) {
    throw new ImageFormatError(`manifest.mediaType is ${own} but it was referenced as ${declaredMediaType}`);
  }
  // OCI allows omitting mediaType; then the shape decides (the spec forbids ambiguous documents).
  const mediaType = own ?? declaredMediaType ?? (o.has('manifests') ? MediaType.OciIndex : MediaType.OciManifest);

  if (isIndexType(mediaType)) {
    if (o.has('config') || o.has('layers')) throw new ImageFormatError('manifest: an index must not have config or layers');
    return {
      kind: 'index',
      mediaType,
      manifests: o.objects('manifests').map(parseDescriptor),
      annotations: o.optionalStringMap('annotations'),
    };
  }
  if (!isManifestType(mediaType)) {
    throw new ImageFormatError(`unsupported manifest media type ${mediaType}`);
  }
  if (o.has('manifests')) throw new ImageFormatError('manifest: an image manifest must not have manifests');
  return {
    kind: 'manifest',
    mediaType,
    config: parseDescriptor(o.object('config')),
    layers: o.objects('layers').map(parseDescriptor),
    annotations: o.optionalStringMap('annotations'),
  };
}

export function parseManifest(bytes: Uint8Array, declaredMediaType?: string): ImageManifest {
  const m = parseManifestOrIndex(bytes, declaredMediaType);
  if (m.kind !== 'manifest') throw new ImageFormatError(`expected an image manifest, got an index (${m.mediaType})`);
  return m;
}

/**
 * Checks that a manifest describes a runnable Linux container image this
 * registry can turn into a root filesystem: a container config and only
 * layer types we can apply.
 */
export function assertRunnableImage(m: ImageManifest): void {
  if (m.config.mediaType !== MediaType.OciConfig && m.config.mediaType !== MediaType.DockerConfig) {
    throw new ImageFormatError(`not a container image: config media type is ${m.config.mediaType}`);
  }
  m.layers.forEach((layer, i) => {
    if (layerCompression(layer.mediaType) === undefined) {
      const hint = layer.mediaType.endsWith('+encrypted') ? ' (encrypted layers are not supported)' : '';
      throw new ImageFormatError(`manifest.layers[${i}] has unsupported media type ${layer.mediaType}${hint}`);
    }
  });
}

/**
 * Canonical bytes for a manifest we synthesise: fixed key order, no
 * whitespace, so the same image always gets the same digest.
 */
export function canonicalManifestBytes(config: Descriptor, layers: readonly Descriptor[]): Uint8Array {
  const desc = (d: Descriptor) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: desc(config),
      layers: layers.map(desc),
    }),
    'utf8',
  );
}
