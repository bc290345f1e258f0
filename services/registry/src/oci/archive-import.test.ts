import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { missingTools } from '@shellwego/testing/images/host-tools';
import { dockerArchive, type FixtureImage, flipByte, ociArchive, sha256 } from '@shellwego/testing/images/image-archive';
import { layerTar } from '@shellwego/testing/images/layer-tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore } from '../store/blob-store.js';
import { DigestMismatchError } from '../store/errors.js';
import { type ImportOptions, importArchive } from './archive-import.js';
import { ImageFormatError, PlatformNotFoundError } from './errors.js';
import { imageBlobDigests } from './imported-image.js';
import { MediaType } from './media-types.js';

describe('importArchive', () => {
  let root: string;
  let store: BlobStore;
  let image: FixtureImage;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'archive-import-'));
    store = await BlobStore.open(root);
    image = {
      layers: [
        await layerTar([
          { type: 'dir', path: 'etc/' },
          { type: 'file', path: 'etc/hello', content: 'hello\n' },
        ]),
        await layerTar([{ type: 'file', path: 'etc/second', content: 'two\n' }]),
      ],
      runtime: {
        Entrypoint: ['/bin/app'],
        Cmd: ['--serve'],
        Env: ['A=1'],
        WorkingDir: '/srv',
        User: 'app',
        ExposedPorts: { '8080/tcp': {} },
        Labels: { team: 'x' },
      },
    };
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Imports through a staging area, committing only on success, as the service does. */
  async function importVia(archive: Buffer, options?: ImportOptions) {
    const stage = await store.stage();
    try {
      const img = await importArchive(Readable.from([archive]), stage, options);
      await stage.commit(imageBlobDigests(img));
      return img;
    } catch (err) {
      await stage.abort();
      throw err;
    }
  }

  async function storeIsEmpty(): Promise<void> {
    expect(await readdir(store.blobsDir)).toEqual([]);
    expect(await readdir(store.tmpDir)).toEqual([]);
  }

  it('imports an OCI image layout and keeps exactly its blobs', async () => {
    const built = await ociArchive(image, { tag: '1.0' });
    const img = await importVia(built.archive);
    const expected = built.images[0];
    expect(img.manifestDigest).toBe(expected?.manifestDigest);
    expect(img.configDigest).toBe(expected?.configDigest);
    expect(img.layers.map((l) => l.digest)).toEqual(expected?.layerDigests);
    expect(img.layers.every((l) => l.mediaType === MediaType.OciLayerGzip)).toBe(true);
    expect(img.diffIds).toEqual(expected?.diffIds);
    expect(img.format).toBe('oci');
    expect(img.tags).toEqual(['1.0']);
    expect(img.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(img.config).toEqual({
      entrypoint: ['/bin/app'],
      cmd: ['--serve'],
      env: ['A=1'],
      workingDir: '/srv',
      user: 'app',
      exposedPorts: ['8080/tcp'],
      labels: { team: 'x' },
      stopSignal: '',
    });
    expect((await readdir(store.blobsDir)).sort()).toEqual(
      imageBlobDigests(img)
        .map((d) => d.slice(7))
        .sort(),
    );
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('imports a docker-archive, synthesising an OCI manifest over the plain layer tars', async () => {
    const built = await dockerArchive(image, { tag: 'app:1.0' });
    const img = await importVia(built.archive);
    expect(img.format).toBe('docker');
    expect(img.tags).toEqual(['app:1.0']);
    expect(img.configDigest).toBe(built.configDigest);
    expect(img.layers.map((l) => l.digest)).toEqual(image.layers.map(sha256));
    expect(img.layers.every((l) => l.mediaType === MediaType.OciLayer)).toBe(true);
    expect(img.manifest.mediaType).toBe(MediaType.OciManifest);
    const again = await importVia((await dockerArchive(image, { tag: 'app:1.0' })).archive);
    expect(again.manifestDigest).toBe(img.manifestDigest);
    expect(await store.has(img.manifestDigest)).toBe(true);
  });

  it('reads gzip-compressed archives and archives whose entries come in any order', async () => {
    const built = await ociArchive(image);
    const img = await importVia(gzipSync(built.archive));
    expect(img.manifestDigest).toBe(built.images[0]?.manifestDigest);
  });

  it('picks the platform from a multi-platform index', async () => {
    const arm: FixtureImage = {
      ...image,
      layers: [await layerTar([{ type: 'file', path: 'arm', content: 'arm' }])],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    };
    const built = await ociArchive([arm, image]);
    const amd = await importVia(built.archive);
    expect(amd.manifestDigest).toBe(built.images[1]?.manifestDigest);
    expect(amd.indexDigest).toBe(built.indexDigest);
    const arm64 = await importVia(built.archive, { platform: 'linux/arm64' });
    expect(arm64.manifestDigest).toBe(built.images[0]?.manifestDigest);
    const err = await importVia(built.archive, { platform: 'linux/s390x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlatformNotFoundError);
    expect((err as Error).message).toBe('the image has no linux/s390x variant (available: linux/arm64/v8, linux/amd64)');
  });

  it('rejects an OCI layout with a flipped byte in a layer and keeps nothing', async () => {
    const built = await ociArchive(image, { mutate: (name, bytes) => (name === `blobs/sha256/${built0(image)}` ? flipByte(bytes) : bytes) });
    const err = await importVia(built.archive).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(`sha256:${built0(image)}`);
    await storeIsEmpty();
  });

  it('rejects a docker-archive whose layer does not match its diff_id', async () => {
    const built = await dockerArchive(image, { mutate: (name, bytes) => (name.endsWith('/layer.tar') ? flipByte(bytes) : bytes) });
    await expect(importVia(built.archive)).rejects.toThrow(/does not match the image config: expected diff_id/);
    await storeIsEmpty();
  });

  it('rejects a docker-archive whose config does not match its name', async () => {
    const built = await dockerArchive(image, {
      mutate: (name, bytes) => (name.endsWith('.json') && name !== 'manifest.json' ? Buffer.from(bytes.toString().replace('"A=1"', '"A=2"')) : bytes),
    });
    await expect(importVia(built.archive)).rejects.toBeInstanceOf(DigestMismatchError);
    await storeIsEmpty();
  });

  it('rejects archives with missing blobs, broken metadata, or no image at all', async () => {
    const layer = (await ociArchive(image)).images[0]?.layerDigests[1] ?? '';
    await expect(importVia((await ociArchive(image, { omit: (n) => n === `blobs/sha256/${layer.slice(7)}` })).archive)).rejects.toThrow(/is missing/);
    await expect(importVia((await ociArchive(image, { mutate: (n, b) => (n === 'index.json' ? Buffer.from('{') : b) })).archive)).rejects.toThrow(
      /index.json|not valid JSON/,
    );
    await expect(importVia(Buffer.alloc(4096))).rejects.toThrow(/not an image archive/);
    await expect(importVia(Buffer.from('this is not a tar file at all, just text'.repeat(20)))).rejects.toBeInstanceOf(ImageFormatError);
    await storeIsEmpty();
  });

  it.skipIf(!!missingTools(['zstd']))(`imports zstd-compressed layers ${missingTools(['zstd']) ?? ''}`, async () => {
    const built = await ociArchive({ ...image, compression: 'zstd' });
    const img = await importVia(built.archive);
    expect(img.layers.every((l) => l.mediaType === MediaType.OciLayerZstd)).toBe(true);
  });
});

/** Hex digest of the first gzip layer ociArchive writes for `image`. */
function built0(image: FixtureImage): string {
  return sha256(gzipSync(image.layers[0] ?? Buffer.alloc(0), { level: 6 })).slice(7);
}
