import type { BlobReader } from '../store/blob-store.js';
import { ImageFormatError } from './errors.js';

/**
 * Reads a small blob (manifest, config, index) fully, checking that it
 * exists and has the size its descriptor announced.
 */
export async function readSmallBlob(blobs: BlobReader, digest: string, what: string, maxBytes: number, expectedSize?: number): Promise<Buffer> {
  const info = await blobs.stat(digest);
  if (!info) throw new ImageFormatError(`${what} ${digest} is missing from the archive`);
  if (expectedSize !== undefined && info.size !== expectedSize) {
    throw new ImageFormatError(`${what} ${digest} is ${info.size} bytes but its descriptor says ${expectedSize}`);
  }
  if (info.size > maxBytes) throw new ImageFormatError(`${what} ${digest} is ${info.size} bytes, more than the ${maxBytes} allowed`);
  const chunks: Buffer[] = [];
  for await (const chunk of await blobs.open(digest)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
