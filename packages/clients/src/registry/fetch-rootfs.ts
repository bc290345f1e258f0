import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import type { Client } from '@connectrpc/connect';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import type { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';

/** The rootfs that arrived is not the one the registry vouched for; nothing was kept. */
export class RootfsVerificationError extends Error {
  constructor(
    readonly imageDigest: string,
    reason: string,
  ) {
    super(`the rootfs of ${imageDigest} failed verification: ${reason}; the download was discarded, fetch it again`);
    this.name = 'RootfsVerificationError';
  }
}

export interface FetchRootfsOptions {
  imageDigest: string;
  /** Required when calling as a node: the grant issued to this node for `imageDigest`. */
  grant?: Grant;
  /** Where the verified ext4 image ends up. */
  path: string;
  /**
   * The sha256 ("sha256:<hex>") the whole file must have, from a source the
   * caller trusts more than the registry (a node: its grant's rootfs_sha256).
   * A mismatch is refused even when the registry's trailer agrees with the bytes.
   */
  sha256?: string;
  /**
   * Continue a download that broke off: the bytes already in `<path>.partial`
   * are kept (and hashed), and the registry sends the rest. Default false.
   */
  resume?: boolean;
  /** Called after each chunk with bytes written so far and the total. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface FetchedRootfs {
  path: string;
  sizeBytes: number;
  sha256: string;
  /** Bytes received in this call (less than sizeBytes after a resume). */
  transferredBytes: number;
}

/** Where a download in progress lives; kept after a broken connection so it can resume. */
export function partialPathOf(path: string): string {
  return `${path}.partial`;
}

/**
 * Downloads an image's rootfs with FetchRootfs into `<path>.partial`,
 * checks that the chunks are contiguous, that the total matches the
 * announced size and that the sha256 of the whole file matches `sha256`
 * when given, and the registry's trailer, fsyncs, and renames it to `path`. On a verification
 * failure the partial file is deleted and RootfsVerificationError thrown;
 * on a broken connection the partial file stays for `resume`.
 */
export async function fetchRootfsToFile(client: Client<typeof RegistryService>, options: FetchRootfsOptions): Promise<FetchedRootfs> {
  const partial = partialPathOf(options.path);
  const hash = createHash('sha256');
  let offset = 0;
  if (options.resume) {
    offset = await hashExisting(partial, hash);
  } else {
    await rm(partial, { force: true });
  }
  const file = await open(partial, offset > 0 ? 'r+' : 'w', 0o644);
  const fail = async (reason: string): Promise<never> => {
    await file.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw new RootfsVerificationError(options.imageDigest, reason);
  };
  let total: number | undefined;
  let trailer: string | undefined;
  const start = offset;
  try {
    const stream = client.fetchRootfs(
      { imageDigest: options.imageDigest, ...(options.grant ? { grant: options.grant } : {}), offset: BigInt(offset) },
      { ...(options.signal ? { signal: options.signal } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) },
    );
    for await (const message of stream) {
      const part = message.part;
      if (part.case === 'info') {
        if (total !== undefined) return await fail('the registry sent a second info message');
        total = Number(part.value.sizeBytes);
        if (offset > total) return await fail(`the partial download (${offset} bytes) is longer than the rootfs (${total} bytes)`);
        await file.truncate(offset);
      } else if (part.case === 'chunk') {
        if (total === undefined) return await fail('a chunk arrived before the info message');
        if (trailer !== undefined) return await fail('a chunk arrived after the digest');
        const at = Number(part.value.offset);
        if (at !== offset) return await fail(`a chunk for offset ${at} arrived where ${offset} was expected`);
        if (offset + part.value.data.length > total) return await fail(`more than the announced ${total} bytes arrived`);
        await writeAll(file, part.value.data, offset);
        hash.update(part.value.data);
        offset += part.value.data.length;
        options.onProgress?.(offset, total);
      } else if (part.case === 'digest') {
        trailer = part.value.sha256;
      }
    }
  } catch (err) {
    await file.close().catch(() => undefined);
    throw err;
  }
  if (total === undefined || trailer === undefined) return await fail('the stream ended without its info or digest message');
  if (offset !== total) return await fail(`received ${offset} of ${total} bytes`);
  const actual = `sha256:${hash.digest('hex')}`;
  if (options.sha256 !== undefined && actual !== options.sha256) {
    return await fail(
      `its sha256 is ${actual} (the registry says ${trailer}), but the grant pins ${options.sha256}: the registry sent another root filesystem than it recorded when the image was imported`,
    );
  }
  if (actual !== trailer) return await fail(`its sha256 is ${actual}, but the registry says ${trailer}`);
  await file.sync();
  await file.close();
  await rename(partial, options.path);
  return { path: options.path, sizeBytes: total, sha256: actual, transferredBytes: offset - start };
}

/** Feeds the bytes of an earlier partial download into `hash`; 0 when there is none. */
async function hashExisting(partial: string, hash: Hash): Promise<number> {
  const st = await stat(partial).catch(() => undefined);
  if (!st || st.size === 0) return 0;
  let n = 0;
  for await (const chunk of createReadStream(partial, { end: st.size - 1 })) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}

async function writeAll(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await file.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}
