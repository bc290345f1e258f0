import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileKekSource } from './file-kek-source.js';
import { KekError } from './kek-error.js';
import { assertKeysCover, loadOrCreateKekRing } from './startup-check.js';

let root: string;
let dir: string;
let path: string;
let source: FileKekSource;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'shellwego-kek-start-'));
  dir = join(root, 'secrets');
  path = join(dir, 'master.key');
  source = new FileKekSource(path);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<KekError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KekError);
  return err as KekError;
}

describe('start-up key check', () => {
  it('creates the first key only when the database references none', async () => {
    const ring = await loadOrCreateKekRing([], source);
    expect(ring.ids).toHaveLength(1);
    expect(await readdir(dir)).toEqual(['master.key']);
    const again = await loadOrCreateKekRing(ring.ids, source);
    expect(again.ids).toEqual(ring.ids);
    expect(await readdir(dir)).toEqual(['master.key']);
  });

  it('refuses to start, and creates nothing, when a referenced key file is missing', async () => {
    const [k1] = (await loadOrCreateKekRing([], source)).ids;
    await unlink(path);
    const err = await refusal(loadOrCreateKekRing([k1 ?? ''], source));
    expect(err.code).toBe('orphaned');
    expect(err.message).toBe(
      `the database holds secrets encrypted under master key ${k1}, but ${path} is missing. ` +
        'Restore the key file from backup (it is not recoverable), or point SHELLWEGO_SECRETS_MASTER_KEY_FILE at it. ' +
        'Refusing to start so that no secret is orphaned.',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses when the key file was replaced by a different key', async () => {
    const [k1] = (await loadOrCreateKekRing([], source)).ids;
    await writeFile(path, randomBytes(32));
    const err = await refusal(assertKeysCover([k1 ?? ''], source));
    expect(err.message).toMatch(new RegExp(`master key ${k1}, but ${path} holds a different key \\(k1-[0-9a-f]{8}\\)\\. Restore the original key file`));
  });

  it('names every missing version, each with its file', async () => {
    await source.create();
    const k2 = await source.create();
    const k3 = await source.create();
    await unlink(source.pathOf(2));
    await unlink(source.pathOf(3));
    const ring = await source.list();
    const err = await refusal(assertKeysCover([...ring.map((k) => k.id), k2.id, k3.id, k2.id], source));
    expect(err.message).toContain(`master key ${k2.id}, but ${join(dir, 'master-k2.key')} is missing`);
    expect(err.message).toContain(`master key ${k3.id}, but ${join(dir, 'master-k3.key')} is missing`);
    expect(err.message.match(new RegExp(k2.id, 'g'))).toHaveLength(1);
  });

  it('refuses to start on a world-readable key file even without references', async () => {
    await loadOrCreateKekRing([], source);
    await chmod(path, 0o644);
    const err = await refusal(loadOrCreateKekRing([], source));
    expect(err.code).toBe('bad-permissions');
    expect(err.message).toContain(`run: chmod 600 ${path}`);
  });

  it('says which source to configure for an id it cannot hold', async () => {
    const err = await refusal(assertKeysCover(['kms-key-7'], source));
    expect(err.message).toMatch(/kms-key-7 is not a file master key id/);
  });

  it('lets concurrent first starts agree on one key', async () => {
    const rings = await Promise.all([loadOrCreateKekRing([], source), loadOrCreateKekRing([], source), loadOrCreateKekRing([], source)]);
    expect(new Set(rings.map((r) => r.ids.join()))).toEqual(new Set([rings[0]?.ids.join()]));
    expect(await readdir(dir)).toEqual(['master.key']);
  });
});
