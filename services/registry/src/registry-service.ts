import { create } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  ArchiveFormat,
  type FetchRootfsRequest,
  type FetchRootfsResponse,
  FetchRootfsResponseSchema,
  type ImportImageRequest,
  type PullImageRequest,
  type PullImageResponse,
  PullImageResponseSchema,
  RegistryService,
} from '@shellwego/contracts/registry/v1/registry_pb';
import { principalOf } from '@shellwego/kit/auth';
import { invalidArgument, notFound } from '@shellwego/kit/errors';
import { GrantError } from '@shellwego/kit/grant';
import type { Counter } from '@shellwego/kit/metrics';
import type { ServiceRegistration } from '@shellwego/kit/rpc';
import { GarbageCollector } from './garbage-collector.js';
import { importImage } from './image-import.js';
import { formatNameTag, parseLocalReference, parseNameTag } from './image-reference.js';
import { imageRootfs } from './image-rootfs.js';
import type { ArchiveFormat as CoreArchiveFormat } from './oci/archive-import.js';
import { imageToProto } from './proto-mapping.js';
import { pullImage } from './pull/image-pull.js';
import type { RegistryContext } from './registry-context.js';
import type { RegistryMetrics } from './registry-metrics.js';
import { streamRootfs } from './rootfs-stream.js';
import { type Operation, toConnectError } from './rpc-errors.js';

const FORMATS: Record<ArchiveFormat, CoreArchiveFormat> = {
  [ArchiveFormat.UNSPECIFIED]: 'auto',
  [ArchiveFormat.OCI]: 'oci',
  [ArchiveFormat.DOCKER]: 'docker',
};

/** The RegistryService RPCs over the registry's domain operations. */
export function registryService(ctx: RegistryContext): ServiceRegistration {
  const gc = new GarbageCollector(ctx);
  const guard = async <T>(operation: Operation, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toConnectError(err, operation);
    }
  };
  const notInRegistry = (reference: string) => notFound(`${reference} is not in the registry; import or pull it first (shellwego image import/pull)`);

  const implementation: ServiceImpl<typeof RegistryService> = {
    importImage: (requests: AsyncIterable<ImportImageRequest>) =>
      guard('import', async () => {
        const it = requests[Symbol.asyncIterator]();
        const first = await it.next();
        if (first.done || first.value.part.case !== 'header') {
          throw invalidArgument('the first ImportImage message must be the header, then the archive in chunks');
        }
        const header = first.value.part.value;
        const name = header.name ? parseNameTag(header.name) : undefined;
        const format = FORMATS[header.format];
        if (format === undefined) throw invalidArgument(`unknown archive format ${header.format}`);
        async function* chunks(): AsyncGenerator<Uint8Array> {
          for (let r = await it.next(); !r.done; r = await it.next()) {
            if (r.value.part.case !== 'chunk') throw invalidArgument('only the first ImportImage message may be a header');
            yield r.value.part.value;
          }
        }
        const image = await counted(ctx.metrics.imports, () =>
          importImage(ctx, { archive: chunks(), ...(name ? { name } : {}), format, platform: header.platform }),
        );
        return { image: imageToProto(image) };
      }),

    async *pullImage(request: PullImageRequest, context: HandlerContext): AsyncGenerator<PullImageResponse> {
      const password = request.credentials ? Buffer.from(request.credentials.password) : undefined;
      // Bytes of each blob downloaded so far: progress reports the running total per blob.
      const downloaded = new Map<string, number>();
      let outcome = 'failed';
      try {
        const name = request.name ? parseNameTag(request.name) : undefined;
        const events = pullImage(ctx, {
          reference: request.reference,
          ...(request.credentials && password ? { credentials: { username: request.credentials.username, password } } : {}),
          ...(request.caPem ? { caPem: request.caPem } : {}),
          insecureHttp: request.insecureHttp,
          platform: request.platform,
          ...(name ? { name } : {}),
          signal: context.signal,
        });
        for await (const event of events) {
          if (event.type === 'progress') {
            countPulled(ctx.metrics, downloaded, event);
            yield create(PullImageResponseSchema, {
              event: {
                case: 'progress',
                value: { digest: event.digest, doneBytes: BigInt(event.done), totalBytes: BigInt(event.total), cached: event.cached },
              },
            });
          } else {
            outcome = 'ok';
            yield create(PullImageResponseSchema, { event: { case: 'image', value: imageToProto(event.image) } });
          }
        }
      } catch (err) {
        throw toConnectError(err, 'pull');
      } finally {
        ctx.metrics.pulls.inc({ outcome });
        password?.fill(0);
        request.credentials?.password.fill(0);
      }
    },

    resolveImage: (request) =>
      guard('other', async () => {
        const image = await ctx.catalog.resolve(parseLocalReference(request.reference), ctx.platform);
        if (!image) throw notInRegistry(request.reference);
        if (image.rootfsSha256 !== undefined) return { image: imageToProto(image) };
        // Imports and pulls record it; an image stored without one gets it built now, as schedulers pin it.
        const release = ctx.imagesInUse.hold([image.digest]);
        try {
          const rootfs = await imageRootfs(ctx, image);
          return { image: imageToProto({ ...image, rootfsSha256: (await ctx.catalog.get(image.digest))?.rootfsSha256 ?? rootfs.sha256 }) };
        } finally {
          release();
        }
      }),

    listImages: () =>
      guard('other', async () => {
        const images = await ctx.catalog.list();
        return { images: images.map(imageToProto) };
      }),

    deleteImage: (request) =>
      guard('other', async () => {
        const ref = parseLocalReference(request.reference);
        if (ref.kind === 'tag') {
          if (!(await ctx.catalog.removeTag(ref))) throw notInRegistry(request.reference);
          ctx.logger.info({ tag: formatNameTag(ref) }, 'tag removed');
          return { removedTags: [formatNameTag(ref)], imageRemoved: false };
        }
        const image = await ctx.catalog.resolve(ref, ctx.platform);
        const removed = image ? await ctx.catalog.removeImage(image.digest) : undefined;
        if (!image || !removed) throw notInRegistry(request.reference);
        ctx.logger.info({ image: image.digest, tags: removed }, 'image removed');
        return { removedTags: removed, imageRemoved: true };
      }),

    async *fetchRootfs(request: FetchRootfsRequest, context: HandlerContext): AsyncGenerator<FetchRootfsResponse> {
      const caller = principalOf(context);
      try {
        const parts = streamRootfs(ctx, caller, { imageDigest: request.imageDigest, grant: request.grant, offset: Number(request.offset) });
        for await (const part of parts) {
          switch (part.type) {
            case 'info':
              yield create(FetchRootfsResponseSchema, { part: { case: 'info', value: { sizeBytes: BigInt(part.sizeBytes), fsType: 'ext4' } } });
              break;
            case 'chunk':
              ctx.metrics.rootfsSentBytes.inc(part.data.length);
              yield create(FetchRootfsResponseSchema, { part: { case: 'chunk', value: { offset: BigInt(part.offset), data: part.data } } });
              break;
            case 'digest':
              yield create(FetchRootfsResponseSchema, { part: { case: 'digest', value: { sha256: part.sha256 } } });
              break;
          }
        }
      } catch (err) {
        if (err instanceof GrantError) {
          ctx.logger.warn({ node: caller.kind === 'node' ? caller.id : undefined, image: request.imageDigest, reason: err.reason }, 'rootfs fetch denied');
        }
        throw toConnectError(err, 'other');
      }
    },

    garbageCollect: () =>
      guard('other', async () => {
        const result = await counted(ctx.metrics.gcRuns, () => gc.collect());
        ctx.metrics.gcFreedBytes.inc(result.bytesFreed);
        return { blobsRemoved: result.blobsRemoved, rootfsRemoved: result.rootfsRemoved, bytesFreed: BigInt(result.bytesFreed) };
      }),
  };
  // No gzip on this service: layers arrive compressed already, and gzipping
  // 1 MiB rootfs chunks costs more CPU than the wire time it saves on a
  // cluster network (it cut FetchRootfs on loopback to a fifth).
  return { service: RegistryService, register: (router) => router.service(RegistryService, implementation, { acceptCompression: [] }) };
}

/** Runs `operation` and counts it by outcome (ok, failed). */
async function counted<T>(counter: Counter<'outcome'>, operation: () => Promise<T>): Promise<T> {
  try {
    const result = await operation();
    counter.inc({ outcome: 'ok' });
    return result;
  } catch (err) {
    counter.inc({ outcome: 'failed' });
    throw err;
  }
}

/** A blob's progress: cached ones count once as found in the store, others add the bytes since the last report. */
function countPulled(
  metrics: RegistryMetrics,
  downloaded: Map<string, number>,
  progress: { digest: string; done: number; total: number; cached: boolean },
): void {
  const before = downloaded.get(progress.digest);
  if (progress.cached) {
    if (before === undefined) metrics.pulledBlobs.inc({ source: 'cache' });
    downloaded.set(progress.digest, progress.total);
    return;
  }
  if (before === undefined) metrics.pulledBlobs.inc({ source: 'remote' });
  if (progress.done > (before ?? 0)) metrics.pulledBytes.inc(progress.done - (before ?? 0));
  downloaded.set(progress.digest, Math.max(before ?? 0, progress.done));
}
