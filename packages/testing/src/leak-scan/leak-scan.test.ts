// The leak sweep finds what it must: a canary planted the way real programs would write it (raw,
// hex, base64 and base64url of it together with unknown bytes before and after, UTF-16LE), in
// strings, inside larger random buffers at any offset, in files, in database rows. It flags
// nothing in random data, follows no symlinks, and fails on what it cannot read.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTables, encodings, leakingRows, leaks, scanFiles, withPglite } from './leak-scan.js';

const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);

interface Plant {
  readonly name: string;
  readonly bytes: Buffer;
}

/** The canary as programs write it: encoded together with 0-5 unknown bytes before and 0-2 after. */
function plants(secret: Buffer): Plant[] {
  const out: Plant[] = [
    { name: 'raw', bytes: Buffer.concat([randomBytes(3), secret, randomBytes(3)]) },
    { name: 'utf16le', bytes: Buffer.from(`value=${secret.toString()};`, 'utf16le') },
  ];
  for (let before = 0; before <= 5; before += 1) {
    for (let after = 0; after <= 2; after += 1) {
      const data = Buffer.concat([randomBytes(before), secret, randomBytes(after)]);
      for (const encoding of ['hex', 'HEX', 'base64', 'base64url'] as const) {
        const text = encoding === 'HEX' ? data.toString('hex').toUpperCase() : data.toString(encoding);
        out.push({ name: `${encoding} of ${before}+canary+${after}`, bytes: Buffer.from(text) });
      }
    }
  }
  return out;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leak-scan-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the leak sweep', () => {
  it('finds the canary in every encoding and alignment, in a string and anywhere inside a larger buffer', () => {
    const all = plants(canary);
    expect(all).toHaveLength(2 + 6 * 3 * 4);
    for (const plant of all) {
      if (plant.name !== 'utf16le') expect(leaks(`log line: ${plant.bytes.toString('latin1')} end`, canary), plant.name).toBe(true);
      for (const offset of [0, 1, 2, 3, 5, 4093, 65_536 - plant.bytes.length]) {
        const haystack = randomBytes(65_536);
        plant.bytes.copy(haystack, offset);
        expect(leaks(haystack, canary), `${plant.name} at ${offset}`).toBe(true);
      }
    }
  });

  it('flags nothing in random data, its encodings, or a canary with one byte changed', () => {
    const noise = randomBytes(1 << 20);
    for (const text of [noise.toString('hex'), noise.toString('hex').toUpperCase(), noise.toString('base64'), noise.toString('base64url')]) {
      expect(leaks(text, canary)).toBe(false);
    }
    expect(leaks(noise, canary)).toBe(false);
    const nearMiss = Buffer.from(canary);
    nearMiss[20] = (nearMiss[20] ?? 0) ^ 0x01;
    for (const plant of plants(nearMiss)) expect(leaks(plant.bytes, canary), plant.name).toBe(false);
  });

  it('searches several secrets at once and refuses one too short to search for', () => {
    const other = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
    expect(leaks(Buffer.from(other.toString('base64')), [canary, other])).toBe(true);
    expect(leaks(Buffer.from(other.toString('base64')), [canary])).toBe(false);
    expect(() => encodings(Buffer.from('short'))).toThrow(/at least 16 bytes/);
  });

  it('finds every planted file, reads past symlinks, fifos and clean files, and reports each', async () => {
    const root = join(dir, 'files');
    const leaking: string[] = [];
    for (const [index, plant] of plants(canary).entries()) {
      const sub = join(root, `d${index % 4}`, index % 3 === 0 ? 'deeper' : '');
      await mkdir(sub, { recursive: true });
      const path = join(sub, `plant-${index}`);
      await writeFile(path, Buffer.concat([randomBytes(index * 97), plant.bytes, randomBytes(1000)]));
      leaking.push(path);
    }
    await writeFile(join(root, 'clean'), randomBytes(100_000));
    const outside = join(dir, 'outside');
    await writeFile(outside, canary);
    await symlink(outside, join(root, 'link-to-a-leak'));
    await symlink(join(dir, 'nowhere'), join(root, 'dangling'));
    await execa('mkfifo', [join(root, 'fifo')]);

    const scan = await scanFiles([root], canary);
    expect(scan.leaking.sort()).toEqual(leaking.sort());
    expect(scan.files).toHaveLength(leaking.length + 1);
    expect(scan.symlinks.sort()).toEqual([join(root, 'dangling'), join(root, 'link-to-a-leak')]);
    expect(scan.unreadable).toEqual([]);
    expect(scan.vanished).toEqual([]);
  });

  it('fails on a file it cannot read, and tells a vanished file from an unreadable one', { timeout: 60_000 }, async () => {
    const root = join(dir, 'unreadable');
    await mkdir(root);
    await writeFile(join(root, 'leak'), canary);
    await writeFile(join(root, 'broken'), canary);
    await writeFile(join(root, 'going'), canary);
    // Root reads any mode, so the failure is real in two ways: a file larger than a read can
    // return (sparse, takes no disk), and a reader that fails or finds the file gone.
    await writeFile(join(root, 'huge'), '');
    await truncate(join(root, 'huge'), 2 ** 31);
    const scan = await scanFiles([root, join(dir, 'no-such-dir')], canary, {
      readFile: async (path) => {
        if (path.endsWith('broken')) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        if (path.endsWith('going')) await rm(path);
        return readFile(path, { flag: 'r' });
      },
    });
    expect(scan.leaking).toEqual([join(root, 'leak')]);
    expect(scan.unreadable.sort()).toEqual(
      [`${join(dir, 'no-such-dir')} (ENOENT)`, `${join(root, 'broken')} (EIO)`, `${join(root, 'huge')} (ERR_FS_FILE_TOO_LARGE)`].sort(),
    );
    expect(scan.vanished).toEqual([join(root, 'going')]);

    // The default reader hits the same limit on its own.
    expect((await scanFiles([root], canary)).unreadable).toEqual([`${join(root, 'huge')} (ERR_FS_FILE_TOO_LARGE)`]);
  });

  it('finds the canary in text, bytea and jsonb columns of a database dump', { timeout: 60_000 }, async () => {
    const dump = await withPglite('memory://', async (query) => {
      await query('CREATE SCHEMA s');
      await query('CREATE TABLE s.t (id int, txt text, raw bytea, doc jsonb, n bigint)');
      await query(`INSERT INTO s.t VALUES
        (0, 'x${Buffer.concat([Buffer.from('ab'), canary]).toString('base64')}x', NULL, NULL, 1),
        (1, NULL, '\\x${Buffer.concat([randomBytes(5), canary]).toString('hex')}', NULL, 2),
        (2, NULL, NULL, '{"k": "${canary.toString('hex').toUpperCase()}"}', 3),
        (3, 'clean', '\\x00ff', '{"k": 1}', 9007199254740993)`);
      return dumpTables(query, ['s']);
    });
    expect([...dump.keys()]).toEqual(['s.t']);
    expect(leakingRows(dump, canary)).toEqual(['s.t row 0', 's.t row 1', 's.t row 2']);
  });
});
