import type { KeyObject } from 'node:crypto';
import { createSecretKey, randomBytes, randomFillSync } from 'node:crypto';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { link, mkdir, open, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode, isErrno } from '@shellwego/kit/errors';
import { KekError } from './kek-error.js';

/** A master key is exactly this many raw random bytes (AES-256). */
export const KEK_BYTES = 32;

const GROUP_OTHER_BITS = 0o077;

export interface KeyFileContents {
  readonly key: KeyObject;
  readonly modifiedAt: Date;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function unreadable(path: string, err: unknown): KekError {
  const uid = process.getuid?.();
  const who = uid === undefined ? 'the secrets service' : `the secrets service (uid ${uid})`;
  return new KekError(
    'unreadable',
    `cannot read master key file ${path} (${errnoCode(err) ?? 'error'}); make it readable by ${who}, e.g. chown it to that user, keeping mode 600`,
  );
}

/**
 * Checks the key directory: it must not be reachable by group or others.
 * Returns false when it does not exist.
 */
export async function checkKeyDirectory(dir: string): Promise<boolean> {
  let st;
  try {
    st = await stat(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new KekError('unreadable', `cannot inspect master key directory ${dir} (${errnoCode(err) ?? 'error'}); make it accessible to the secrets service`);
  }
  if (!st.isDirectory()) {
    throw new KekError('not-a-file', `master key directory ${dir} is not a directory; point the master key path at a file inside a private directory`);
  }
  if ((st.mode & GROUP_OTHER_BITS) !== 0) {
    throw new KekError('bad-permissions', `master key directory ${dir} has mode ${octal(st.mode)}; run: chmod 700 ${dir}`);
  }
  return true;
}

/**
 * Reads one key file after checking, on the open descriptor (no race between
 * check and read), that it is a regular file, mode 0600 or narrower and
 * exactly 32 bytes. Returns undefined when the file does not exist.
 */
export async function readKeyFile(path: string): Promise<KeyFileContents | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw unreadable(path, err);
  }
  const raw = Buffer.alloc(KEK_BYTES + 1);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KekError('not-a-file', `master key path ${path} is not a regular file; it must be the 32-byte key file`);
    if ((st.mode & GROUP_OTHER_BITS) !== 0) {
      throw new KekError('bad-permissions', `master key file ${path} has mode ${octal(st.mode)}; run: chmod 600 ${path}`);
    }
    if (st.size !== KEK_BYTES) {
      throw new KekError(
        'wrong-size',
        `master key file ${path} is ${st.size} bytes; a master key is exactly ${KEK_BYTES} random bytes. Restore the right file from backup; do not edit or re-encode it`,
      );
    }
    let length: number;
    try {
      ({ bytesRead: length } = await fh.read(raw, 0, raw.length, 0));
    } catch (err) {
      throw unreadable(path, err);
    }
    if (length !== KEK_BYTES) {
      throw new KekError('wrong-size', `master key file ${path} changed size while being read; make sure nothing else writes to it`);
    }
    return { key: createSecretKey(raw.subarray(0, KEK_BYTES)), modifiedAt: st.mtime };
  } finally {
    raw.fill(0);
    await fh.close();
  }
}

/**
 * Creates a key file holding 32 fresh random bytes, never replacing an
 * existing one: the bytes go to a temp file opened 0600 from the start
 * (O_EXCL), are fsynced, and are then hard-linked to the final name, which
 * fails if the name exists (unlike rename). The directory is created 0700
 * when missing and fsynced after the link.
 */
export async function createKeyFile(path: string): Promise<KeyFileContents> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await checkKeyDirectory(dir);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const material = Buffer.alloc(KEK_BYTES);
  try {
    randomFillSync(material);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(material);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new KekError('exists', `master key file ${path} already exists; another process created it first`);
      throw err;
    }
    await syncDirectory(dir);
    const st = await stat(path);
    return { key: createSecretKey(material), modifiedAt: st.mtime };
  } finally {
    material.fill(0);
    await unlink(tmp).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
