import { type Duplex, PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import type { LayerCompression } from './media-types.js';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/**
 * The compression of a layer, from its first bytes. The bytes are already
 * verified against the manifest's digest, so trusting them over a
 * mislabelled media type cannot be abused, and it spares people the images
 * some tools label wrongly.
 */
export function detectCompression(head: Uint8Array): LayerCompression {
  const starts = (magic: number[]) => magic.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  if (starts(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/**
 * A stream that decompresses what is written to it. Node 20's zlib has no
 * zstd, so zstd runs through the `zstd` program (Debian package zstd); a
 * corrupt frame or a missing program fails the stream with its stderr.
 */
export function createDecompressor(kind: LayerCompression): Duplex {
  switch (kind) {
    case 'gzip':
      return createGunzip({ chunkSize: 256 * 1024 });
    case 'zstd':
      return execa('zstd', ['-d', '-c', '-q'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stderr: true, stdout: false } }).duplex();
    case 'none':
      return new PassThrough();
  }
}

/**
 * Reads the first `n` bytes of `source` (fewer if it is shorter) and returns
 * them with a stream that yields the whole content again, head included.
 * Destroying the returned stream destroys `source`.
 */
export async function peekStream(source: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    chunks.push(r.value);
    have += r.value.length;
  }
  const first = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      if (first.length > 0) yield first;
      while (!done) {
        const r = await it.next();
        if (r.done) done = true;
        else yield r.value;
      }
    } finally {
      if (!done) await it.return?.();
    }
  }
  const out = Readable.from(replay(), { objectMode: false });
  // A generator that never started has no finally to run: release the source here too.
  out.once('close', () => {
    if (!done) source.destroy();
  });
  return { head: first.subarray(0, n), stream: out };
}
