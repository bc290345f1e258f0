import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BlobNotFoundError } from './errors.js';

/** Opens a blob file for reading; a missing file is BlobNotFoundError. */
export async function openBlobFile(file: string, digest: string, start = 0): Promise<Readable> {
  try {
    const handle = await open(file, 'r');
    return handle.createReadStream({ start });
  } catch (err) {
    if (isNotFound(err)) throw new BlobNotFoundError(digest);
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
