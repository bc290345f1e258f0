import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { busyboxLayer, busyboxMissing } from '@shellwego/testing/images/busybox';
import { type Ext4Node, ext4Cat, ext4Tree } from '@shellwego/testing/images/debugfs';
import { missingTools } from '@shellwego/testing/images/host-tools';
import { dockerArchive, type FixtureImage, flipByte, ociArchive } from '@shellwego/testing/images/image-archive';
import { type LayerEntry, layerTar, manyFilesTar } from '@shellwego/testing/images/layer-tar';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { importArchive } from '../oci/archive-import.js';
import { type ImportedImage, imageBlobDigests } from '../oci/imported-image.js';
import { BlobStore } from '../store/blob-store.js';
import { DigestMismatchError } from '../store/errors.js';
import { LayerRejectedError } from './errors.js';
import { type RootfsArtifact, RootfsBuilder, type RootfsEvent } from './rootfs-builder.js';

/** Where an escape through `evil -> /` would land: harmless, and checked to stay absent. */
const ESCAPE = `tmp/shellwego-escape-${process.pid}`;

const missing = missingTools(['mkfs.ext4', 'debugfs', 'dumpe2fs', 'e2fsck']) ?? busyboxMissing();

/** What a node looks like, minus inode numbers (which differ between images). */
function shape(nodes: Map<string, Ext4Node>): Record<string, Omit<Ext4Node, 'ino' | 'path'>> {
  return Object.fromEntries([...nodes].map(([path, { ino: _ino, path: _path, ...rest }]) => [path, rest]));
}

describe.skipIf(!!missing)(`rootfs from imported images${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let work: string;
  let store: BlobStore;
  let builder: RootfsBuilder;
  let events: RootfsEvent[];
  let busybox: Buffer;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rootfs-builder-'));
    busybox = await layerTar(busyboxLayer());
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(async () => {
    const dir = await mkdtemp(join(work, 'case-'));
    store = await BlobStore.open(join(dir, 'store'));
    events = [];
    builder = await RootfsBuilder.open({ cacheDir: join(dir, 'rootfs'), limits: { maxEntries: 300 }, onEvent: (e) => events.push(e) });
  });

  /** Import into a staging area, build, then commit; on any failure abort, as ImportImage does. */
  async function importAndBuild(archive: Buffer): Promise<{ image: ImportedImage; rootfs: RootfsArtifact }> {
    const stage = await store.stage();
    try {
      const image = await importArchive(Readable.from([archive]), stage);
      const rootfs = await builder.build(image, stage);
      await stage.commit(imageBlobDigests(image));
      return { image, rootfs };
    } catch (err) {
      await stage.abort();
      throw err;
    }
  }

  /** Nothing in the blob store, its temp dir, or the rootfs cache (temp dir included). */
  async function nothingLeft(): Promise<void> {
    expect(await readdir(store.blobsDir)).toEqual([]);
    expect(await readdir(store.tmpDir)).toEqual([]);
    const cacheDir = join(store.root, '..', 'rootfs');
    expect(await readdir(cacheDir)).toEqual(['tmp']);
    expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
  }

  it('builds identical file systems from an OCI layout and a docker-archive of the same image', async () => {
    const image: FixtureImage = { layers: [busybox] };
    const oci = await importAndBuild((await ociArchive(image)).archive);
    const docker = await importAndBuild((await dockerArchive(image)).archive);
    expect(oci.image.manifestDigest).not.toBe(docker.image.manifestDigest);

    const [a, b] = await Promise.all([ext4Tree(oci.rootfs.path), ext4Tree(docker.rootfs.path)]);
    expect(shape(a)).toEqual(shape(b));
    expect(a.get('/bin/busybox')).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0 });
    expect(a.get('/bin/sh')).toMatchObject({ type: 'symlink', target: 'busybox' });
    expect(a.get('/usr/bin/env')).toMatchObject({ type: 'symlink', target: '/bin/busybox' });
    expect(a.get('/tmp')).toMatchObject({ type: 'dir', mode: 0o1777 });
    expect(a.get('/root')).toMatchObject({ type: 'dir', mode: 0o700 });
    expect(a.get('/etc/shadow')).toMatchObject({ mode: 0o640, uid: 0, gid: 42 });
    expect(a.get('/home/nobody/.profile')).toMatchObject({ uid: 65534, gid: 65534 });
    const original = await readFile('/bin/busybox');
    for (const img of [oci.rootfs.path, docker.rootfs.path]) {
      expect((await ext4Cat(img, '/bin/busybox')).equals(original)).toBe(true);
      expect((await ext4Cat(img, '/etc/passwd')).toString()).toMatch(/^root:x:0:0:/);
      expect((await execa('e2fsck', ['-fn', img], { reject: false })).exitCode).toBe(0);
    }
    // The cached file is what its recorded sha256 says.
    const sha = `sha256:${createHash('sha256')
      .update(await readFile(oci.rootfs.path))
      .digest('hex')}`;
    expect(oci.rootfs.sha256).toBe(sha);
    expect(await builder.lookup(oci.image.manifestDigest)).toEqual(oci.rootfs);
  });

  it('applies a three-layer image exactly as the OCI changeset rules say', async () => {
    const uid = { uid: 1000, gid: 1000 };
    const layers: LayerEntry[][] = [
      [
        { type: 'dir', path: './' },
        { type: 'dir', path: './etc/' },
        { type: 'file', path: './etc/config', content: 'v1' },
        { type: 'file', path: './etc/old', content: 'old' },
        { type: 'dir', path: './app/' },
        { type: 'dir', path: './app/data/' },
        { type: 'file', path: './app/data/a', content: 'a' },
        { type: 'dir', path: './app/data/sub/' },
        { type: 'file', path: './app/data/sub/b', content: 'b' },
        { type: 'dir', path: './bin/' },
        { type: 'file', path: './bin/tool', content: 'tool v1', mode: 0o755 },
        { type: 'dir', path: './lib/' },
        { type: 'file', path: './lib/libx.so.1', content: 'lib1' },
        { type: 'symlink', path: './lib/libx.so', target: 'libx.so.1' },
        { type: 'dir', path: './var/' },
        { type: 'dir', path: './var/run/' },
        { type: 'dir', path: './var/log/' },
        { type: 'file', path: './var/log/x.log', content: 'log' },
        { type: 'dir', path: './srv/' },
        { type: 'file', path: './srv/x', content: 'old x' },
      ],
      [
        { type: 'whiteout', path: './etc/old' },
        { type: 'dir', path: './app/data/' },
        { type: 'file', path: './app/data/new', content: 'new' },
        { type: 'opaque', path: './app/data' }, // after this layer's own entry: it must survive
        { type: 'file', path: './bin/tool', content: 'tool v2', mode: 0o4755 },
        { type: 'hardlink', path: './bin/tool-link', target: './bin/tool' },
        { type: 'whiteout', path: './var/log' },
        { type: 'file', path: './lib/libx.so.2', content: 'lib2' },
        { type: 'symlink', path: './lib/libx.so', target: 'libx.so.2' },
        { type: 'dir', path: './home/user/', mode: 0o700, ...uid },
        { type: 'file', path: './home/user/notes', content: 'notes', mode: 0o600, ...uid },
      ],
      [
        { type: 'file', path: './etc/config', content: 'v3', mode: 0o600 },
        { type: 'whiteout', path: './lib/libx.so.1' },
        { type: 'symlink', path: './var/run', target: '../run' }, // a directory replaced by a symlink
        { type: 'dir', path: './run/', mode: 0o755 },
        { type: 'whiteout', path: './srv/x' },
        { type: 'file', path: './srv/x', content: 'new x' },
        { type: 'file', path: './srv/y', content: 'keep y' },
        { type: 'whiteout', path: './srv/y' }, // same layer: does not hide srv/y
        { type: 'dir', path: './tmp/', mode: 0o1777 },
      ],
    ];
    const { rootfs } = await importAndBuild((await ociArchive({ layers: await Promise.all(layers.map(layerTar)) })).archive);
    const tree = await ext4Tree(rootfs.path);
    expect([...tree.keys()].sort()).toEqual(
      [
        '/app',
        '/app/data',
        '/app/data/new',
        '/bin',
        '/bin/tool',
        '/bin/tool-link',
        '/etc',
        '/etc/config',
        '/home',
        '/home/user',
        '/home/user/notes',
        '/lib',
        '/lib/libx.so',
        '/lib/libx.so.2',
        '/run',
        '/srv',
        '/srv/x',
        '/srv/y',
        '/tmp',
        '/var',
        '/var/run',
      ].sort(),
    );
    const cat = async (p: string) => (await ext4Cat(rootfs.path, p)).toString();
    expect(await cat('/etc/config')).toBe('v3');
    expect(tree.get('/etc/config')).toMatchObject({ mode: 0o600 });
    expect(await cat('/bin/tool')).toBe('tool v2');
    expect(tree.get('/bin/tool')).toMatchObject({ type: 'file', mode: 0o4755, uid: 0, links: 2 });
    expect(tree.get('/bin/tool-link')?.ino).toBe(tree.get('/bin/tool')?.ino);
    expect(await cat('/bin/tool-link')).toBe('tool v2');
    expect(tree.get('/lib/libx.so')).toMatchObject({ type: 'symlink', target: 'libx.so.2' });
    expect(tree.get('/var/run')).toMatchObject({ type: 'symlink', target: '../run' });
    expect(tree.get('/home/user')).toMatchObject({ type: 'dir', mode: 0o700, uid: 1000, gid: 1000 });
    expect(tree.get('/home/user/notes')).toMatchObject({ mode: 0o600, uid: 1000, gid: 1000 });
    expect(tree.get('/home')).toMatchObject({ type: 'dir', mode: 0o755, uid: 0, gid: 0 });
    expect(tree.get('/tmp')).toMatchObject({ mode: 0o1777 });
    expect(await cat('/app/data/new')).toBe('new');
    expect(await cat('/srv/x')).toBe('new x');
    expect(await cat('/srv/y')).toBe('keep y');
  });

  it('rejects malicious layers with the layer and entry named, and keeps nothing', async () => {
    const cases: [LayerEntry[][], string, RegExp][] = [
      [[[{ type: 'file', path: '../x', content: 'x' }]], '../x', /traversal/],
      [[[{ type: 'file', path: '/etc/x', content: 'x' }]], '/etc/x', /absolute path/],
      [[[{ type: 'symlink', path: 'evil', target: '/' }], [{ type: 'file', path: `evil/${ESCAPE}`, content: 'x' }]], `evil/${ESCAPE}`, /symlink \/evil/],
      [
        [
          [
            { type: 'symlink', path: 'evil', target: '../../..' },
            { type: 'file', path: `evil/${ESCAPE}`, content: 'x' },
          ],
        ],
        `evil/${ESCAPE}`,
        /symlink \/evil/,
      ],
    ];
    for (const [layers, entry, reason] of cases) {
      const built = await ociArchive({ layers: await Promise.all(layers.map(layerTar)) });
      const err = await importAndBuild(built.archive).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerRejectedError);
      expect((err as LayerRejectedError).entryPath).toBe(entry);
      expect((err as Error).message).toMatch(reason);
      expect(built.images[0]?.layerDigests).toContain((err as LayerRejectedError).layerDigest);
      await nothingLeft();
      expect(existsSync(`/${ESCAPE}`)).toBe(false);
    }
  });

  it('rejects a tar bomb over the entry limit and keeps nothing', async () => {
    const built = await ociArchive({ layers: [await manyFilesTar(301)] });
    await expect(importAndBuild(built.archive)).rejects.toThrow(/more than 300 entries/);
    await nothingLeft();
    expect(events.map((e) => e.type)).toEqual(['build-start', 'build-failed']);
  });

  it('rejects an archive with a corrupted blob and keeps nothing', async () => {
    const built = await ociArchive(
      { layers: [busybox] },
      { mutate: (name, bytes) => (name.startsWith('blobs/') && bytes.length > 100_000 ? flipByte(bytes) : bytes) },
    );
    await expect(importAndBuild(built.archive)).rejects.toBeInstanceOf(DigestMismatchError);
    await nothingLeft();
  });

  it.skipIf(!!missingTools(['zstd']))('builds from zstd-compressed layers', async () => {
    const { rootfs } = await importAndBuild((await ociArchive({ layers: [busybox], compression: 'zstd' })).archive);
    expect((await ext4Cat(rootfs.path, '/bin/busybox')).equals(await readFile('/bin/busybox'))).toBe(true);
  });

  it('builds an image with an empty layer', async () => {
    const { rootfs } = await importAndBuild((await ociArchive({ layers: [await layerTar([])] })).archive);
    expect([...(await ext4Tree(rootfs.path)).keys()]).toEqual([]);
  });

  it('coalesces concurrent builds of one image into a single mkfs', async () => {
    const stage = await store.stage();
    const image = await importArchive(Readable.from([(await ociArchive({ layers: [busybox] })).archive]), stage);
    await stage.commit(imageBlobDigests(image));
    const results = await Promise.all(Array.from({ length: 5 }, () => builder.build(image, store)));
    expect(new Set(results.map((r) => r.sha256)).size).toBe(1);
    expect(events.filter((e) => e.type === 'build-start')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'build-done')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'coalesced')).toHaveLength(4);
    expect(await builder.build(image, store)).toEqual(results[0]);
    expect(events.at(-1)?.type).toBe('cache-hit');
    expect(builder.isBuilding(image.manifestDigest)).toBe(false);
  });

  it('gives the same tree when owners are recorded and written by debugfs (the non-root path)', async () => {
    const stage = await store.stage();
    const image = await importArchive(Readable.from([(await ociArchive({ layers: [busybox] })).archive]), stage);
    await stage.commit(imageBlobDigests(image));
    const chowned = await builder.build(image, store);
    const recorder = await RootfsBuilder.open({ cacheDir: join(store.root, '..', 'rootfs-recorded'), ownership: 'record' });
    const recorded = await recorder.build(image, store);
    expect(shape(await ext4Tree(recorded.path))).toEqual(shape(await ext4Tree(chowned.path)));
  });

  it('rebuilds byte-identical images', async () => {
    const stage = await store.stage();
    const image = await importArchive(Readable.from([(await ociArchive({ layers: [busybox] })).archive]), stage);
    await stage.commit(imageBlobDigests(image));
    const first = await builder.build(image, store);
    const bytes = await readFile(first.path);
    expect(await builder.remove(image.manifestDigest)).toBe(true);
    expect(await builder.lookup(image.manifestDigest)).toBeUndefined();
    const second = await builder.build(image, store);
    expect(second.sha256).toBe(first.sha256);
    expect((await readFile(second.path)).equals(bytes)).toBe(true);
  });
});
