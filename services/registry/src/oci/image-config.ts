import { isDigest } from '../store/digest.js';
import { ImageFormatError } from './errors.js';
import { JsonObject, parseJson } from './json-check.js';
import type { Platform } from './platform.js';

/** What the platform needs to run the image (the OCI config's `config` object). */
export interface RuntimeConfig {
  entrypoint: string[];
  cmd: string[];
  /** `KEY=value`, in image order. */
  env: string[];
  /** Empty means "/". */
  workingDir: string;
  /** Empty means root. */
  user: string;
  /** `port/protocol`, sorted. */
  exposedPorts: string[];
  labels: Record<string, string>;
  stopSignal: string;
}

export interface ImageConfig {
  platform: Platform;
  /** RFC 3339, when the image says. */
  created?: string;
  runtime: RuntimeConfig;
  /** Digests of the uncompressed layers, bottom first. */
  diffIds: string[];
}

export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Parses an OCI image config (Docker's container image v1 JSON is the same shape). */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new ImageFormatError(`image config is ${bytes.length} bytes, more than the ${MAX_CONFIG_BYTES} allowed`);
  }
  const o = JsonObject.from(parseJson(bytes, 'image config'), 'config');
  const variant = o.optionalString('variant');
  const platform: Platform = { os: o.string('os'), architecture: o.string('architecture'), ...(variant ? { variant } : {}) };

  const rootfs = o.object('rootfs');
  if (rootfs.string('type') !== 'layers') throw new ImageFormatError('config.rootfs.type: expected "layers"');
  const diffIds = rootfs.strings('diff_ids');
  diffIds.forEach((d, i) => {
    if (!isDigest(d)) throw new ImageFormatError(`config.rootfs.diff_ids[${i}]: not a sha256 digest`);
  });

  const c = o.optionalObject('config');
  const env = c?.optionalStrings('Env') ?? [];
  env.forEach((e, i) => {
    if (!/^[^=]+=/.test(e)) throw new ImageFormatError(`config.config.Env[${i}]: expected KEY=value`);
  });
  const ports = c?.optionalObject('ExposedPorts')?.keys() ?? [];
  ports.forEach((p) => {
    if (!/^\d{1,5}(\/(tcp|udp|sctp))?$/.test(p)) throw new ImageFormatError(`config.config.ExposedPorts: invalid port ${JSON.stringify(p)}`);
  });
  const created = o.optionalString('created');
  return {
    platform,
    ...(created ? { created } : {}),
    runtime: {
      entrypoint: c?.optionalStrings('Entrypoint') ?? [],
      cmd: c?.optionalStrings('Cmd') ?? [],
      env,
      workingDir: c?.optionalString('WorkingDir') ?? '',
      user: c?.optionalString('User') ?? '',
      exposedPorts: ports.map((p) => (p.includes('/') ? p : `${p}/tcp`)).sort(),
      labels: c?.optionalStringMap('Labels') ?? {},
      stopSignal: c?.optionalString('StopSignal') ?? '',
    },
    diffIds,
  };
}
