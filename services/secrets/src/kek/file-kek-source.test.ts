import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultMasterKeyPath, FileKekSource } from './file-kek-source.js';
import type { KekErrorCode } from './kek-error.js';
import { KekError } from './kek-error.js';
import { createKeyFile } from './key-file.js';

const execFileAsync = promisify(execFile);
const NOBODY = 65534;

let root: string;
let dir: string;
let path: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'shellwego-kek-'));
  dir = join(root, 'secrets');
  path = join(dir, 'master.key');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function kekFailure(promise: Promise<unknown>, code: KekErrorCode): Promise<KekError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KekError);
  expect((err as KekError).code).toBe(code);
  return err as KekError;
}

async function writeKey(file: string, bytes: Buffer, mode = 0o600): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(file, bytes, { mode });
  await chmod(file, mode);
}

describe('FileKekSource', () => {
  it('uses $SHELLWEGO_HOME/secrets/master.key by default', () => {
    expect(defaultMasterKeyPath('/var/lib/shellwego')).toBe('/var/lib/shellwego/secrets/master.key');
  });

  it('lists nothing when neither directory nor key exists', async () => {
    expect(await new FileKekSource(path).list()).toEqual([]);
  });

  it('creates the first key 0600 in a 0700 directory even with a permissive umask', async () => {
    const source = new FileKekSource(path);
    const previous = process.umask(0);
    let created;
    try {
      created = await source.create();
    } finally {
      process.umask(previous);
    }
    expect(created.id).toMatch(/^k1-[0-9a-f]{8}$/);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path)).length).toBe(32);
    expect(await readdir(dir)).toEqual(['master.key']);
    const listed = await source.list();
    expect(listed.map((k) => k.id)).toEqual([created.id]);
  });

  it('adds versions beside the first for rotation and lists them in order', async () => {
    const source = new FileKekSource(path);
    const first = await source.create();
    const second = await source.create();
    const third = await source.create();
    expect([second.id, third.id].map((id) => id.split('-')[0])).toEqual(['k2', 'k3']);
    expect((await readdir(dir)).sort()).toEqual(['master-k2.key', 'master-k3.key', 'master.key']);
    expect(source.pathOf(2)).toBe(join(dir, 'master-k2.key'));
    expect((await source.list()).map((k) => k.id)).toEqual([first.id, second.id, third.id]);
  });

  it('accepts a key file written by an operator (head -c 32 /dev/urandom), mode 0400 too', async () => {
    await writeKey(path, randomBytes(32), 0o400);
    const [kek] = await new FileKekSource(path).list();
    expect(kek?.id).toMatch(/^k1-/);
  });

  it('never overwrites an existing key file', async () => {
    const original = randomBytes(32);
    await writeKey(path, original);
    const err = await kekFailure(createKeyFile(path), 'exists');
    expect(err.message).toContain(path);
    expect((await readFile(path)).equals(original)).toBe(true);
    expect(await readdir(dir)).toEqual(['master.key']);
  });

  it('refuses a key file readable by group or others, saying how to fix it', async () => {
    for (const mode of [0o644, 0o640, 0o604]) {
      await writeKey(path, randomBytes(32), mode);
      const err = await kekFailure(new FileKekSource(path).list(), 'bad-permissions');
      expect(err.message).toBe(`master key file ${path} has mode 0${mode.toString(8)}; run: chmod 600 ${path}`);
    }
  });

  it('refuses a key directory open to group or others', async () => {
    await writeKey(path, randomBytes(32));
    await chmod(dir, 0o755);
    const err = await kekFailure(new FileKekSource(path).list(), 'bad-permissions');
    expect(err.message).toBe(`master key directory ${dir} has mode 0755; run: chmod 700 ${dir}`);
    await kekFailure(new FileKekSource(path).create(), 'bad-permissions');
  });

  it('refuses a key file of the wrong size', async () => {
    for (const size of [0, 31, 33, 44]) {
      await writeKey(path, randomBytes(size));
      const err = await kekFailure(new FileKekSource(path).list(), 'wrong-size');
      expect(err.message).toContain(`is ${size} bytes; a master key is exactly 32 random bytes`);
    }
  });

  it('refuses a key path that is not a regular file', async () => {
    await mkdir(path, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    await kekFailure(new FileKekSource(path).list(), 'not-a-file');
  });

  it('refuses a key file the service user cannot read, naming that user', async () => {
    await writeKey(path, randomBytes(32));
    if (process.getuid?.() !== 0) {
      await chmod(path, 0o000);
      const err = await kekFailure(new FileKekSource(path).list(), 'unreadable');
      expect(err.message).toContain(`cannot read master key file ${path} (EACCES)`);
      return;
    }
    // Root reads any file, so load as an unprivileged user (nobody) that owns
    // the directory but not the root-owned 0600 key file, i.e. a service
    // started under the wrong account.
    await chmod(root, 0o711);
    await chown(dir, NOBODY, NOBODY);
    const script = `const { FileKekSource } = await import(${JSON.stringify(new URL('./file-kek-source.ts', import.meta.url).pathname)});
      try { await new FileKekSource(${JSON.stringify(path)}).list(); console.log('loaded'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { uid: NOBODY, gid: NOBODY });
    expect(JSON.parse(stdout)).toEqual({
      code: 'unreadable',
      message: `cannot read master key file ${path} (EACCES); make it readable by the secrets service (uid ${NOBODY}), e.g. chown it to that user, keeping mode 600`,
    });
  });
});
