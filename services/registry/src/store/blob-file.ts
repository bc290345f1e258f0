import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { isErrno } from '@shellwego/kit/errors';
import { BlobNotFoundError } from './errors.js';

/** Opens a blob file for reading; a missing file is BlobNotFoundError. */
export async function openBlobFile(file: string, digest: string, start = 0): Promise<Readable> {
  try {
    const handle = await open(file, 'r');
    return handle.createReadStream({ start });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new BlobNotFoundError(digest);
    throw err;
  }
}
