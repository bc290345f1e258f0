import { chmod, chown, lutimes, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ext4Cat, ext4Times, ext4Tree } from '@shellwego/testing/images/debugfs';
import { missingTools } from '@shellwego/testing/images/host-tools';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildExt4 } from './ext4-build.js';

const missing = missingTools(['mkfs.ext4', 'debugfs', 'dumpe2fs', 'e2fsck']);

async function fsckClean(image: string): Promise<void> {
  const r = await execa('e2fsck', ['-fn', image], { reject: false, all: true });
  expect(r.all).not.toMatch(/Fix\?|error|corrupt/i);
  expect(r.exitCode).toBe(0);
}

describe.skipIf(!!missing)(`buildExt4${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let work: string;

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'ext4-build-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('builds a valid image of an empty tree', async () => {
    const tree = join(work, 'empty');
    await mkdir(tree);
    const image = join(work, 'empty.ext4');
    const result = await buildExt4(tree, image, { minHeadroomMiB: 0, headroomPercent: 0 });
    expect(result.attempts).toBe(1);
    expect((await stat(image)).size).toBe(result.sizeBytes);
    expect(result.sizeBytes).toBe(1024 * 1024); // the floor: mke2fs's own minimum is 224 KiB
    await fsckClean(image);
    expect([...(await ext4Tree(image)).keys()]).toEqual([]);
    const { stdout } = await execa('dumpe2fs', ['-h', image], { stderr: 'ignore' });
    expect(stdout).toMatch(/Filesystem volume name:\s+rootfs/);
    expect(stdout).not.toMatch(/has_journal/);
  });

  it('sizes the image to the content, many small files and a large one included', async () => {
    const tree = join(work, 'tree');
    await mkdir(join(tree, 'many'), { recursive: true });
    for (let d = 0; d < 8; d++) {
      await mkdir(join(tree, 'many', `dir-with-a-long-name-${d}`));
      for (let f = 0; f < 150; f++) await writeFile(join(tree, 'many', `dir-with-a-long-name-${d}`, `file-${f}-${'n'.repeat(40)}`), `${d}/${f}`);
    }
    await writeFile(join(tree, 'big'), Buffer.alloc(24 * 1024 * 1024, 7));
    const image = join(work, 'tree.ext4');
    const result = await buildExt4(tree, image, { headroomPercent: 5, minHeadroomMiB: 1 });
    expect(result.attempts).toBe(1);
    expect(result.sizeBytes).toBeLessThan(60 * 1024 * 1024);
    await fsckClean(image);
    expect((await ext4Cat(image, `/many/dir-with-a-long-name-7/file-149-${'n'.repeat(40)}`)).toString()).toBe('7/149');
  });

  it('is byte-for-byte reproducible for the same tree and seed', async () => {
    const make = async (name: string, order: string[]) => {
      const tree = join(work, name);
      await mkdir(tree);
      for (const f of order) await writeFile(join(tree, f), f);
      await mkdir(join(tree, 'd'));
      await symlink('a', join(tree, 'd', 'link'));
      for (const f of order) await utimes(join(tree, f), 1_700_000_000, 1_700_000_000);
      await lutimes(join(tree, 'd', 'link'), 1_700_000_000, 1_700_000_000);
      await utimes(join(tree, 'd'), 1_700_000_000, 1_700_000_000);
      await utimes(tree, 1_700_000_000, 1_700_000_000);
      const image = join(work, `${name}.ext4`);
      await buildExt4(tree, image, { seed: 'sha256:same', timestamp: 1_600_000_000 });
      return image;
    };
    const a = await make('a', ['a', 'b', 'c', 'z']);
    const b = await make('b', ['z', 'c', 'b', 'a']); // created in another order, at another time
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
    expect(await ext4Times(a, '/b')).toEqual({ mtime: 1_700_000_000, atime: 1_600_000_000, ctime: 1_600_000_000 });
    const c = join(work, 'c.ext4');
    await buildExt4(join(work, 'a'), c, { seed: 'sha256:other', timestamp: 1_600_000_000 });
    expect((await readFile(a)).equals(await readFile(c))).toBe(false);
  });

  it('writes recorded owners and modes into the image', async () => {
    const tree = join(work, 'owned');
    await mkdir(join(tree, 'home', 'u'), { recursive: true });
    await writeFile(join(tree, 'home', 'u', 'tool "x"'), 'x');
    await chown(join(tree, 'home', 'u', 'tool "x"'), 4321, 4321);
    await chmod(join(tree, 'home', 'u', 'tool "x"'), 0o600);
    const image = join(work, 'owned.ext4');
    await buildExt4(tree, image, {
      owners: new Map([
        ['', { mode: 0o40755, uid: 0, gid: 0 }],
        ['home/u', { mode: 0o40700, uid: 1000, gid: 1000 }],
        ['home/u/tool "x"', { mode: 0o104755, uid: 0, gid: 50 }],
      ]),
    });
    const nodes = await ext4Tree(image);
    expect(nodes.get('/home/u')).toMatchObject({ mode: 0o700, uid: 1000, gid: 1000 });
    expect(nodes.get('/home/u/tool "x"')).toMatchObject({ type: 'file', mode: 0o4755, uid: 0, gid: 50 });
    await fsckClean(image);
  });

  it('removes the image and reports mkfs errors', async () => {
    const image = join(work, 'x.ext4');
    await expect(buildExt4(join(work, 'no-such-dir'), image)).rejects.toThrow();
    await expect(stat(image)).rejects.toThrow();
  });
});
