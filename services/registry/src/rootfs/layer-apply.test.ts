import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256 } from '@shellwego/testing/images/image-archive';
import { gzipLayer, type LayerEntry, layerTar, manyFilesTar } from '@shellwego/testing/images/layer-tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LayerRejectedError } from './errors.js';
import { type ApplyOptions, applyLayers, type LayerSource } from './layer-apply.js';

/**
 * Where an escape through `evil -> /` would write on the host: a harmless
 * name under /tmp (not /etc/passwd), so a regression fails the test instead
 * of damaging the machine.
 */
const ESCAPE = `tmp/shellwego-escape-${process.pid}`;

/** Layers as LayerSources, the way the builder feeds them (gzip for every other one). */
async function sources(layers: LayerEntry[][]): Promise<LayerSource[]> {
  return Promise.all(
    layers.map(async (entries, i) => {
      const tarBytes = await layerTar(entries);
      const blob = i % 2 === 0 ? gzipLayer(tarBytes) : tarBytes;
      return { digest: sha256(blob), diffId: sha256(tarBytes), open: async () => Readable.from([blob]) };
    }),
  );
}

/** Relative paths under `dir`, sorted. */
function listTree(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const rel = prefix ? `${prefix}/${name}` : name;
      const st = lstatSync(join(dir, name));
      return st.isDirectory() ? [rel, ...listTree(join(dir, name), rel)] : [rel];
    })
    .sort();
}

describe('applyLayers', () => {
  let work: string;
  let target: string;
  let sentinel: string;

  beforeEach(async () => {
    // work/ holds the tree (work/root) next to a sentinel directory an escape would reach.
    work = await mkdtemp(join(tmpdir(), 'layer-apply-'));
    target = join(work, 'root');
    sentinel = join(work, 'outside');
    await mkdir(target);
    await mkdir(sentinel);
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const apply = async (layers: LayerEntry[][], options?: ApplyOptions) => applyLayers(await sources(layers), target, options);
  const read = (rel: string) => readFileSync(join(target, rel), 'utf8');

  it('applies whiteouts only to lower layers, wherever they appear in the layer', async () => {
    const result = await apply([
      [
        { type: 'dir', path: 'a/' },
        { type: 'file', path: 'a/keep', content: 'lower' },
        { type: 'file', path: 'a/gone', content: 'lower' },
        { type: 'dir', path: 'a/sub/' },
        { type: 'file', path: 'a/sub/deep', content: 'lower' },
        { type: 'file', path: 'a/redo', content: 'lower' },
      ],
      [
        // An entry of this layer, then a whiteout for the same name: the entry stays.
        { type: 'file', path: 'a/mine', content: 'upper' },
        { type: 'whiteout', path: 'a/mine' },
        // A whiteout, then an entry of the same name: lower removed, entry created.
        { type: 'whiteout', path: 'a/redo' },
        { type: 'file', path: 'a/redo', content: 'upper' },
        { type: 'whiteout', path: 'a/gone' },
        { type: 'whiteout', path: 'a/sub' },
        { type: 'whiteout', path: 'a/never-existed' },
      ],
    ]);
    expect(listTree(target)).toEqual(['a', 'a/keep', 'a/mine', 'a/redo']);
    expect([read('a/keep'), read('a/mine'), read('a/redo')]).toEqual(['lower', 'upper', 'upper']);
    expect(result.whiteouts).toBe(5);
  });

  it('makes a directory opaque even when the marker comes after the layer own entries', async () => {
    await apply([
      [
        { type: 'dir', path: 'a/' },
        { type: 'dir', path: 'a/b/' },
        { type: 'dir', path: 'a/b/c/' },
        { type: 'file', path: 'a/b/c/bar', content: 'lower' },
        { type: 'file', path: 'a/top', content: 'lower' },
        { type: 'file', path: 'other', content: 'lower' },
      ],
      [
        { type: 'dir', path: 'a/' },
        { type: 'dir', path: 'a/b/' },
        { type: 'dir', path: 'a/b/c/' },
        { type: 'file', path: 'a/b/c/foo', content: 'upper' },
        { type: 'opaque', path: 'a' },
      ],
    ]);
    expect(listTree(target)).toEqual(['a', 'a/b', 'a/b/c', 'a/b/c/foo', 'other']);
  });

  it('merges directories, replaces everything else, and keeps modes, owners and mtimes', async () => {
    const mtime = new Date('2020-05-06T07:08:09Z');
    await apply([
      [
        { type: 'dir', path: 'd/', mode: 0o700 },
        { type: 'file', path: 'd/lower', content: 'x' },
        { type: 'dir', path: 'was-dir/' },
        { type: 'file', path: 'was-dir/child', content: 'x' },
        { type: 'file', path: 'was-file', content: 'x' },
        { type: 'symlink', path: 'link', target: 'somewhere' },
      ],
      [
        { type: 'dir', path: 'd/', mode: 0o1777, uid: 12, gid: 34, mtime },
        { type: 'file', path: 'was-dir', content: 'now a file', mode: 0o4755, uid: 1000, gid: 1000, mtime },
        { type: 'dir', path: 'was-file/', mode: 0o750 },
        { type: 'file', path: 'link', content: 'not a link' },
        { type: 'symlink', path: 'abs', target: '/etc/passwd', uid: 5, gid: 6, mtime },
      ],
    ]);
    expect(listTree(target)).toEqual(['abs', 'd', 'd/lower', 'link', 'was-dir', 'was-file']);
    const d = statSync(join(target, 'd'));
    expect([d.mode & 0o7777, d.uid, d.gid, d.mtime.getTime()]).toEqual([0o1777, 12, 34, mtime.getTime()]);
    const f = statSync(join(target, 'was-dir'));
    expect([f.mode & 0o7777, f.uid, f.gid, f.mtime.getTime(), read('was-dir')]).toEqual([0o4755, 1000, 1000, mtime.getTime(), 'now a file']);
    expect(statSync(join(target, 'was-file')).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(target, 'link')).isFile()).toBe(true);
    const abs = lstatSync(join(target, 'abs'));
    expect([readlinkSync(join(target, 'abs')), abs.uid, abs.gid, abs.mtime.getTime()]).toEqual(['/etc/passwd', 5, 6, mtime.getTime()]);
  });

  it('creates hard links to paths already in the tree, across layers', async () => {
    const result = await apply([
      [{ type: 'file', path: 'bin/tool', content: 'tool', mode: 0o755 }],
      [
        { type: 'hardlink', path: 'bin/alias', target: 'bin/tool' },
        { type: 'hardlink', path: 'again', target: './bin/tool' },
      ],
    ]);
    const a = statSync(join(target, 'bin/tool'));
    expect(statSync(join(target, 'bin/alias')).ino).toBe(a.ino);
    expect(statSync(join(target, 'again')).ino).toBe(a.ino);
    expect(a.nlink).toBe(3);
    expect(result.hardlinks).toBe(2);
    // Parents created implicitly: root-owned 0755 with a fixed mtime.
    const bin = statSync(join(target, 'bin'));
    expect([bin.mode & 0o7777, bin.uid, bin.mtime.getTime()]).toEqual([0o755, 0, 0]);
  });

  it('skips devices and FIFOs with a note, still replacing the lower path', async () => {
    const result = await apply([
      [{ type: 'file', path: 'dev/null', content: 'lower file' }],
      [
        { type: 'character-device', path: 'dev/null', devmajor: 1, devminor: 3 },
        { type: 'block-device', path: 'dev/sda' },
        { type: 'fifo', path: 'run/pipe' },
      ],
    ]);
    expect(listTree(target)).toEqual(['dev', 'run']);
    expect(result.skippedSpecial).toBe(3);
    expect(result.skippedNotes).toEqual(['character-device /dev/null', 'block-device /dev/sda', 'fifo /run/pipe']);
  });

  it('records owners instead of chowning in record mode', async () => {
    const result = await apply(
      [
        [
          { type: 'dir', path: 'home/u/', uid: 1000, gid: 100, mode: 0o700 },
          { type: 'file', path: 'home/u/f', content: 'x', uid: 1000, gid: 100, mode: 0o4750 },
          { type: 'symlink', path: 'l', target: 'x' },
        ],
      ],
      { ownership: 'record' },
    );
    expect(Object.fromEntries(result.owners ?? [])).toEqual({
      '': { mode: 0o40755, uid: 0, gid: 0 },
      home: { mode: 0o40755, uid: 0, gid: 0 },
      'home/u': { mode: 0o40700, uid: 1000, gid: 100 },
      'home/u/f': { mode: 0o104750, uid: 1000, gid: 100 },
      l: { mode: 0o120777, uid: 0, gid: 0 },
    });
    // The tree itself stays owned by the builder and readable by it.
    expect(statSync(join(target, 'home/u/f')).uid).toBe(process.getuid?.());
  });

  describe('refuses', () => {
    const rejects = async (layers: LayerEntry[][], entry: string, reason: RegExp, options?: ApplyOptions) => {
      await rm(target, { recursive: true, force: true });
      await mkdir(target);
      const outsideBefore = readdirSync(sentinel);
      const srcs = await sources(layers);
      const err = await applyLayers(srcs, target, options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerRejectedError);
      const e = err as LayerRejectedError;
      expect(e.entryPath).toBe(entry);
      expect(e.message).toMatch(reason);
      expect(srcs.map((s) => s.digest)).toContain(e.layerDigest);
      expect(e.message).toContain(e.layerDigest);
      expect(readdirSync(sentinel)).toEqual(outsideBefore);
      expect(readdirSync(work).sort()).toEqual(['outside', 'root']);
      expect(existsSync(`/${ESCAPE}`)).toBe(false);
    };

    it('paths with ".." and absolute paths', async () => {
      await rejects([[{ type: 'file', path: '../x', content: 'escape' }]], '../x', /traversal/);
      await rejects([[{ type: 'file', path: 'a/../../x', content: 'escape' }]], 'a/../../x', /traversal/);
      await rejects([[{ type: 'file', path: '/etc/x', content: 'abs' }]], '/etc/x', /absolute path/);
      await rejects([[{ type: 'dir', path: '../outside/' }]], '../outside/', /traversal/);
    });

    it('writes through a symlink from a lower layer, whatever it points at', async () => {
      await rejects(
        [[{ type: 'symlink', path: 'evil', target: '/' }], [{ type: 'file', path: `evil/${ESCAPE}`, content: 'root::0:0::/:/bin/sh' }]],
        `evil/${ESCAPE}`,
        /goes through symlink \/evil/,
      );
      await rejects([[{ type: 'symlink', path: 'evil', target: '../outside' }], [{ type: 'file', path: 'evil/pwned', content: 'x' }]], 'evil/pwned', /symlink/);
      await rejects(
        [
          [
            { type: 'dir', path: 'real/' },
            { type: 'symlink', path: 'inner', target: 'real' },
            { type: 'file', path: 'inner/f', content: 'x' },
          ],
        ],
        'inner/f',
        /symlink \/inner/,
      );
    });

    it('writes through a symlink created earlier in the same layer', async () => {
      await rejects(
        [
          [
            { type: 'symlink', path: 'evil', target: '../../..' },
            { type: 'file', path: `evil/${ESCAPE}`, content: 'x' },
          ],
        ],
        `evil/${ESCAPE}`,
        /symlink/,
      );
      await rejects(
        [
          [
            { type: 'symlink', path: 'evil', target: '../outside' },
            { type: 'dir', path: 'evil/sub/' },
          ],
        ],
        'evil/sub/',
        /symlink/,
      );
    });

    it('whiteouts and hard links through symlinks or out of the root', async () => {
      await mkdir(join(sentinel, 'victim'));
      await rejects([[{ type: 'symlink', path: 'evil', target: '../outside' }], [{ type: 'whiteout', path: 'evil/victim' }]], 'evil/.wh.victim', /symlink/);
      expect(existsSync(join(sentinel, 'victim'))).toBe(true);
      await rm(join(sentinel, 'victim'), { recursive: true });
      await rejects([[{ type: 'hardlink', path: 'h', target: '../outside/x' }]], 'h', /traversal/);
      await rejects([[{ type: 'hardlink', path: 'h', target: '/etc/passwd' }]], 'h', /absolute path/);
      await rejects(
        [
          [
            { type: 'symlink', path: 'up', target: '../../etc/shadow' },
            { type: 'hardlink', path: 'h', target: 'up' },
          ],
        ],
        'h',
        /symlink leading outside/,
      );
      await rejects(
        [
          [
            { type: 'symlink', path: 'evil', target: '/' },
            { type: 'hardlink', path: 'h', target: 'evil/etc/hostname' },
          ],
        ],
        'h',
        /symlink/,
      );
      await rejects([[{ type: 'hardlink', path: 'h', target: 'missing' }]], 'h', /does not exist/);
    });

    it('a tar bomb of too many entries and too many bytes', async () => {
      const tarBytes = await manyFilesTar(201);
      const bomb: LayerSource = { digest: sha256(tarBytes), open: async () => Readable.from([tarBytes]) };
      const err = await applyLayers([bomb], target, { limits: { maxEntries: 200 } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerRejectedError);
      expect((err as Error).message).toMatch(/more than 200 entries/);
      await rejects([[{ type: 'file', path: 'big', content: Buffer.alloc(5000) }]], 'big', /more than 4096 bytes/, { limits: { maxTotalBytes: 4096 } });
    });

    it('content that does not match its diff_id', async () => {
      const [src] = await sources([[{ type: 'file', path: 'f', content: 'x' }]]);
      const wrong = { ...src!, diffId: sha256(Buffer.from('other')) };
      await expect(applyLayers([wrong], target)).rejects.toThrow(/the uncompressed layer is sha256:.* but the image config says/);
    });

    it('truncated layers', async () => {
      const tarBytes = await layerTar([{ type: 'file', path: 'f', content: randomBytes(100_000) }]);
      const cut = gzipLayer(tarBytes).subarray(0, 500);
      await expect(applyLayers([{ digest: sha256(cut), open: async () => Readable.from([cut]) }], target)).rejects.toThrow(/cannot read the layer/);
    });
  });
});
