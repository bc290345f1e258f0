// Fuzzing the OCI documents the registry reads from archives and remote registries: manifests,
// indexes and image configs. Valid documents are mutated (fields dropped, retyped, replaced with
// arbitrary JSON, huge arrays, deep nesting), and raw bytes (invalid UTF-8 included) are fed as is.
// Each is either parsed into a well-formed result or refused with ImageFormatError.
import { FUZZ_TIMEOUT_MS, FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import { type Json, jsonBytes, mutatedJson } from '@shellwego/testing/fuzz/json-mutation';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDigest } from '../store/digest.js';
import type { Descriptor } from './descriptor.js';
import { ImageFormatError } from './errors.js';
import { parseImageConfig } from './image-config.js';
import { parseManifestOrIndex } from './manifest.js';
import { MediaType } from './media-types.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const descriptor = (mediaType: string, c: string, size: number) => ({ mediaType, digest: digest(c), size });

const validManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: descriptor(MediaType.OciConfig, 'a', 123),
  layers: [descriptor('application/vnd.oci.image.layer.v1.tar+gzip', 'b', 456), descriptor('application/vnd.oci.image.layer.v1.tar', 'c', 7)],
  annotations: { 'org.opencontainers.image.title': 'fuzz' },
};
const validIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [{ ...descriptor(MediaType.OciManifest, 'd', 900), platform: { os: 'linux', architecture: 'amd64' } }],
};
const validConfig = {
  architecture: 'amd64',
  os: 'linux',
  created: '2024-01-02T03:04:05Z',
  config: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], Env: ['A=1'], WorkingDir: '/', User: '1000', ExposedPorts: { '8080/tcp': {} }, Labels: { a: 'b' } },
  rootfs: { type: 'layers', diff_ids: [digest('e')] },
};

const DOCUMENT_KEYS = ['mediaType', 'digest', 'size', 'urls', 'platform', 'manifests', 'layers', 'config', 'rootfs', 'diff_ids'];
const mutated = (valid: object) => mutatedJson(valid as Json, DOCUMENT_KEYS);

const rawBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'binary', maxLength: 256 }).map((s) => Buffer.from(s, 'utf8')),
  // Deep nesting and huge arrays where descriptors go, as text (fast-check's own printing of such
  // values would recurse too deep).
  fc
    .tuple(fc.nat({ max: 100_000 }), fc.constantFrom('layers', 'manifests', 'config', 'rootfs'))
    .map(([n, key]) => Buffer.from(`{"schemaVersion":2,"architecture":"amd64","os":"linux","${key}":${'['.repeat(n)}${']'.repeat(n)}}`, 'utf8')),
  fc.nat({ max: 200_000 }).map((n) => Buffer.from(`{"schemaVersion":2,"layers":[${Array(n).fill('{}').join(',')}]}`, 'utf8')),
  // A valid document with one byte changed: invalid UTF-8, broken syntax, or a changed value.
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
    const bytes = jsonBytes(validManifest as unknown as Json);
    const i = at % bytes.length;
    bytes[i] = (bytes[i] ?? 0) ^ xor;
    return bytes;
  }),
);

function checkDescriptor(d: Descriptor): void {
  expect(isDigest(d.digest)).toBe(true);
  expect(Number.isSafeInteger(d.size) && d.size >= 0).toBe(true);
  expect(typeof d.mediaType).toBe('string');
  for (const value of Object.values(d.annotations)) expect(typeof value).toBe('string');
}

/** Runs `parse` on `bytes`: a result that passes `check`, or ImageFormatError; anything else fails. */
function parsedOrRefused<T>(tally: FuzzTally, parse: () => T, check: (result: T) => void): void {
  let result: T;
  try {
    result = parse();
  } catch (error) {
    if (!(error instanceof ImageFormatError)) throw error;
    tally.count('refused');
    return;
  }
  check(result);
  tally.count('parsed');
}

describe('OCI documents under fuzzing', () => {
  it('parses mutated manifests and indexes into well-formed results or refuses them with ImageFormatError', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const input = fc.oneof(
      { weight: 2, arbitrary: mutated(validManifest).map(jsonBytes) },
      { weight: 2, arbitrary: mutated(validIndex).map(jsonBytes) },
      { weight: 1, arbitrary: rawBytes },
    );
    const property = fc.property(
      input,
      fc.option(fc.constantFrom(MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, 'text/html'), { freq: 2 }),
      (bytes, declared) => {
        parsedOrRefused(
          tally,
          () => parseManifestOrIndex(bytes, declared ?? undefined),
          (doc) => {
            if (doc.kind === 'manifest') {
              checkDescriptor(doc.config);
              doc.layers.forEach(checkDescriptor);
            } else {
              doc.manifests.forEach(checkDescriptor);
            }
          },
        );
      },
    );
    await runFuzz('oci/manifest-and-index', 3000, property, tally);
    expect(tally.get('parsed')).toBeGreaterThan(100);
    expect(tally.get('refused')).toBeGreaterThan(100);
  });

  it('parses mutated image configs into well-formed results or refuses them with ImageFormatError', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const input = fc.oneof(mutated(validConfig).map(jsonBytes), rawBytes);
    const property = fc.property(input, (bytes) => {
      parsedOrRefused(
        tally,
        () => parseImageConfig(bytes),
        (config) => {
          for (const d of config.diffIds) expect(isDigest(d)).toBe(true);
          for (const list of [config.runtime.entrypoint, config.runtime.cmd, config.runtime.env]) for (const item of list) expect(typeof item).toBe('string');
          for (const port of config.runtime.exposedPorts) expect(port).toMatch(/^\d{1,5}\/(tcp|udp|sctp)$/);
          expect(typeof config.platform.os).toBe('string');
        },
      );
    });
    await runFuzz('oci/image-config', 3000, property, tally);
    expect(tally.get('parsed')).toBeGreaterThan(100);
    expect(tally.get('refused')).toBeGreaterThan(100);
  });
});
