import { createReadStream } from 'node:fs';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { verifyGrant } from '@shellwego/kit/grant';
import type { Principal } from '@shellwego/kit/pki';
import { imageRootfs } from './image-rootfs.js';
import type { RegistryContext } from './registry-context.js';
import { isDigest } from './store/digest.js';

/** One part of a FetchRootfs stream. */
export type RootfsPart = { type: 'info'; sizeBytes: number } | { type: 'chunk'; offset: number; data: Buffer } | { type: 'digest'; sha256: string };

export interface RootfsFetch {
  imageDigest: string;
  grant: Grant | undefined;
  offset: number;
}

/** The request cannot be served as asked. */
export class RootfsRequestError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'out-of-range',
    message: string,
  ) {
    super(message);
    this.name = 'RootfsRequestError';
  }
}

/** Bytes per chunk message: large enough for throughput, far below the 4 MiB message limit. */
export const ROOTFS_CHUNK_BYTES = 1024 * 1024;

/**
 * Streams the ext4 rootfs of an image from `offset`: info, chunks, then
 * the sha256 of the whole image as the cache has it (nodes check the bytes
 * against the sha256 their grant pins, not against this). A node must show a grant issued to it for
 * exactly this digest (checked before anything else, so a node learns
 * nothing about images it has no grant for); admins need none. The rootfs
 * is built on first request, and held against garbage collection while it
 * streams. Throws GrantError, RootfsRequestError, build errors.
 */
export async function* streamRootfs(ctx: RegistryContext, caller: Principal, request: RootfsFetch): AsyncGenerator<RootfsPart> {
  if (!isDigest(request.imageDigest)) {
    throw new RootfsRequestError(
      'invalid',
      `image_digest ${JSON.stringify(request.imageDigest.slice(0, 100))} is not sha256: followed by 64 lowercase hex digits`,
    );
  }
  if (caller.kind === 'node') verifyGrant(request.grant, ctx.verifier, { audience: 'registry', nodeId: caller.id, imageDigest: request.imageDigest });
  const release = ctx.imagesInUse.hold([request.imageDigest]);
  try {
    const image = await ctx.catalog.get(request.imageDigest);
    if (!image) throw new RootfsRequestError('not-found', `image ${request.imageDigest} is not in the registry`);
    const artifact = await imageRootfs(ctx, image);
    if (request.offset > artifact.sizeBytes) {
      throw new RootfsRequestError('out-of-range', `offset ${request.offset} is past the end of the ${artifact.sizeBytes}-byte rootfs of ${image.digest}`);
    }
    yield { type: 'info', sizeBytes: artifact.sizeBytes };
    let offset = request.offset;
    if (offset < artifact.sizeBytes) {
      const file = createReadStream(artifact.path, { start: offset, highWaterMark: ROOTFS_CHUNK_BYTES });
      try {
        for await (const chunk of file) {
          const data = chunk as Buffer; // no encoding set: Buffers
          yield { type: 'chunk', offset, data };
          offset += data.length;
        }
      } finally {
        file.destroy();
      }
    }
    if (offset !== artifact.sizeBytes) {
      throw new Error(`the rootfs of ${image.digest} changed size while it was sent (${offset} of ${artifact.sizeBytes} bytes)`);
    }
    yield { type: 'digest', sha256: artifact.sha256 };
  } finally {
    release();
  }
}
