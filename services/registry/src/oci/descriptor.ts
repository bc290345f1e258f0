import { isDigest } from '../store/digest.js';
import { ImageFormatError } from './errors.js';
import type { JsonObject } from './json-check.js';
import type { Platform } from './platform.js';

/** An OCI content descriptor (also the shape of Docker v2 descriptors). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations: Record<string, string>;
  urls: string[];
}

export function parseDescriptor(o: JsonObject): Descriptor {
  const digest = o.string('digest');
  if (!isDigest(digest)) {
    throw new ImageFormatError(
      `${o.path('digest')}: ${JSON.stringify(digest.slice(0, 80))} is not a sha256 digest (only sha256:<64 lowercase hex> is supported)`,
    );
  }
  const d: Descriptor = {
    mediaType: o.string('mediaType'),
    digest,
    size: o.integer('size'),
    annotations: o.optionalStringMap('annotations'),
    urls: o.optionalStrings('urls'),
  };
  const p = o.optionalObject('platform');
  if (p) {
    const variant = p.optionalString('variant');
    d.platform = { os: p.string('os'), architecture: p.string('architecture'), ...(variant ? { variant } : {}) };
  }
  return d;
}
