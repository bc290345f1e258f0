import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex } from './digest.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';

/** Anything a blob can be written from. */
export type BlobSource = NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array;

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Hashes and counts the bytes passing through; fails as soon as there are more than `limit`. */
class HashingCounter extends Transform {
  readonly hash = createHash('sha256');
  size = 0;

  constructor(
    private readonly limit: number | undefined,
    private readonly expectedDigest: string | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.limit !== undefined && this.size > this.limit) {
      // Stop a lying or runaway source before it fills the disk.
      callback(new SizeMismatchError(this.expectedDigest, this.limit, this.size));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

/**
 * Streams `source` into a new file at `file` (which must not exist), hashing
 * on the way, and fsyncs it. Throws DigestMismatchError / SizeMismatchError
 * when the content is not what was announced. On any failure the file is
 * gone when the promise settles: it is opened before the first byte is read
 * and closed before it is removed, so no late open can recreate it.
 */
export async function writeVerified(source: BlobSource, file: string, expectedDigest?: string, expectedSize?: number): Promise<BlobInfo> {
  if (expectedDigest !== undefined) digestHex(expectedDigest);
  if (expectedSize !== undefined && (!Number.isSafeInteger(expectedSize) || expectedSize < 0)) {
    throw new RangeError(`invalid expected size ${expectedSize}`);
  }
  const counter = new HashingCounter(expectedSize, expectedDigest);
  const input = source instanceof Uint8Array ? [source] : source;
  const handle = await open(file, 'wx', 0o644);
  try {
    try {
      await pipeline(input, counter, async (hashed: AsyncIterable<Buffer>) => {
        for await (const chunk of hashed) {
          for (let offset = 0; offset < chunk.length; ) offset += (await handle.write(chunk, offset)).bytesWritten;
        }
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
    const digest = `sha256:${counter.hash.digest('hex')}`;
    if (expectedSize !== undefined && counter.size !== expectedSize) {
      throw new SizeMismatchError(expectedDigest, expectedSize, counter.size);
    }
    if (expectedDigest !== undefined && digest !== expectedDigest) {
      throw new DigestMismatchError(expectedDigest, digest);
    }
    return { digest, size: counter.size };
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}
