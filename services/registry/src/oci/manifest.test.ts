import { describe, expect, it } from 'vitest';
import { ImageFormatError } from './errors.js';
import { parseImageConfig } from './image-config.js';
import { assertRunnableImage, canonicalManifestBytes, parseManifest, parseManifestOrIndex } from './manifest.js';
import { MediaType } from './media-types.js';
import { parsePlatform, platformScore } from './platform.js';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: D1, size: 100 },
  layers: [{ mediaType: MediaType.OciLayerGzip, digest: D2, size: 2000 }],
};

describe('parseManifestOrIndex', () => {
  it('parses an OCI manifest and a Docker v2 manifest', () => {
    const m = parseManifest(json(ociManifest));
    expect(m.config.digest).toBe(D1);
    expect(m.layers).toEqual([{ mediaType: MediaType.OciLayerGzip, digest: D2, size: 2000, annotations: {}, urls: [] }]);
    const docker = parseManifest(
      json({ ...ociManifest, mediaType: MediaType.DockerManifest, config: { ...ociManifest.config, mediaType: MediaType.DockerConfig } }),
    );
    expect(docker.mediaType).toBe(MediaType.DockerManifest);
    expect(() => assertRunnableImage(docker)).not.toThrow();
  });

  it('parses an OCI index and a Docker manifest list with platforms', () => {
    for (const mediaType of [MediaType.OciIndex, MediaType.DockerManifestList]) {
      const idx = parseManifestOrIndex(
        json({
          schemaVersion: 2,
          mediaType,
          manifests: [{ mediaType: MediaType.OciManifest, digest: D1, size: 5, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }],
        }),
      );
      expect(idx.kind).toBe('index');
      if (idx.kind === 'index') expect(idx.manifests[0]?.platform).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    }
  });

  it('infers the type from the shape when mediaType is absent', () => {
    const { mediaType: _omit, ...bare } = ociManifest;
    expect(parseManifestOrIndex(json(bare)).kind).toBe('manifest');
    expect(parseManifestOrIndex(json({ schemaVersion: 2, manifests: [] })).kind).toBe('index');
  });

  it('names the offending field', () => {
    const cases: [unknown, string][] = [
      [{ ...ociManifest, layers: undefined }, 'manifest.layers: expected an array, missing'],
      [{ ...ociManifest, layers: [{ ...ociManifest.layers[0], digest: 'sha256:abc' }] }, 'manifest.layers[0].digest'],
      [{ ...ociManifest, layers: [{ ...ociManifest.layers[0], size: -1 }] }, 'manifest.layers[0].size: expected a non-negative integer'],
      [{ ...ociManifest, config: 'x' }, 'manifest.config: expected a JSON object'],
      [{ ...ociManifest, schemaVersion: 3 }, 'manifest.schemaVersion: expected 2'],
      [[1, 2], 'manifest: expected a JSON object'],
    ];
    for (const [doc, message] of cases) {
      expect(() => parseManifestOrIndex(json(doc))).toThrow(message);
    }
  });

  it('rejects schema 1, invalid JSON, conflicting media types, and other algorithms', () => {
    expect(() => parseManifestOrIndex(json({ schemaVersion: 1, name: 'x', fsLayers: [] }))).toThrow(/schema 1 is not supported/);
    expect(() => parseManifestOrIndex(Buffer.from('{"schemaVersion":'))).toThrow(/not valid JSON/);
    expect(() => parseManifestOrIndex(json(ociManifest), MediaType.DockerManifest)).toThrow(/referenced as/);
    expect(() => parseManifestOrIndex(json({ ...ociManifest, config: { ...ociManifest.config, digest: `sha512:${'a'.repeat(128)}` } }))).toThrow(/only sha256/);
  });

  it('refuses images it cannot turn into a root file system', () => {
    const artifact = parseManifest(json({ ...ociManifest, config: { ...ociManifest.config, mediaType: 'application/vnd.cncf.helm.config.v1+json' } }));
    expect(() => assertRunnableImage(artifact)).toThrow(/not a container image/);
    const encrypted = parseManifest(json({ ...ociManifest, layers: [{ ...ociManifest.layers[0], mediaType: `${MediaType.OciLayerGzip}+encrypted` }] }));
    expect(() => assertRunnableImage(encrypted)).toThrow(/encrypted layers are not supported/);
  });

  it('writes canonical manifest bytes', () => {
    const m = parseManifest(json(ociManifest));
    const a = Buffer.from(canonicalManifestBytes(m.config, m.layers)).toString();
    expect(a).toBe(
      `{"schemaVersion":2,"mediaType":"${MediaType.OciManifest}","config":{"mediaType":"${MediaType.OciConfig}","digest":"${D1}","size":100},"layers":[{"mediaType":"${MediaType.OciLayerGzip}","digest":"${D2}","size":2000}]}`,
    );
  });
});

describe('parseImageConfig', () => {
  const base = { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [D1] } };

  it('reads the runtime config, tolerating Docker nulls', () => {
    const c = parseImageConfig(
      json({
        ...base,
        created: '2024-01-02T03:04:05Z',
        config: {
          Entrypoint: null,
          Cmd: ['sh', '-c', 'x'],
          Env: ['A=1', 'B='],
          WorkingDir: '/srv',
          User: '1000:1000',
          ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '9000': {} },
          Labels: null,
        },
      }),
    );
    expect(c.runtime).toEqual({
      entrypoint: [],
      cmd: ['sh', '-c', 'x'],
      env: ['A=1', 'B='],
      workingDir: '/srv',
      user: '1000:1000',
      exposedPorts: ['53/udp', '8080/tcp', '9000/tcp'],
      labels: {},
      stopSignal: '',
    });
    expect(c.diffIds).toEqual([D1]);
    expect(c.platform).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  it('rejects malformed configs', () => {
    expect(() => parseImageConfig(json({ ...base, rootfs: { type: 'layers', diff_ids: ['x'] } }))).toThrow('config.rootfs.diff_ids[0]');
    expect(() => parseImageConfig(json({ ...base, config: { Env: ['NOEQUALS'] } }))).toThrow('config.config.Env[0]');
    expect(() => parseImageConfig(json({ ...base, config: { ExposedPorts: { 'http/tcp': {} } } }))).toThrow(/invalid port/);
    expect(() => parseImageConfig(json({ architecture: 'amd64', rootfs: base.rootfs }))).toThrow(ImageFormatError);
  });
});

describe('platforms', () => {
  it('parses and scores, normalising aliases and default variants', () => {
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(() => parsePlatform('linux')).toThrow(/os\/architecture/);
    expect(platformScore(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(2);
    expect(platformScore(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'x86_64' })).toBe(2);
    expect(platformScore(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(1);
    expect(platformScore(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(0);
    expect(platformScore(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' })).toBe(0);
  });
});
