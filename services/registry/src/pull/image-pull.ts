import { PushQueue } from '@shellwego/kit/async';
import { isErrno } from '@shellwego/kit/errors';
import type { ImageRecord } from '../image-catalog.js';
import { InvalidReferenceError, localNameOf, parseRemoteReference, type TagReference } from '../image-reference.js';
import type { Descriptor } from '../oci/descriptor.js';
import { ImageFormatError, PlatformNotFoundError } from '../oci/errors.js';
import { checkImage } from '../oci/image-check.js';
import { type ImportedImage, imageBlobDigests } from '../oci/imported-image.js';
import { assertRunnableImage, parseManifest, parseManifestOrIndex } from '../oci/manifest.js';
import { isIndexType, isManifestType, MediaType } from '../oci/media-types.js';
import { formatPlatform, parsePlatform, platformScore } from '../oci/platform.js';
import type { RegistryContext } from '../registry-context.js';
import { digestOf } from '../store/digest.js';
import { DigestMismatchError, SizeMismatchError } from '../store/errors.js';
import { DistributionClient, isLoopbackHost, type RegistryCredentials } from './distribution-client.js';
import { RemoteRegistryError } from './remote-error.js';

export interface PullRequest {
  /** [host[:port]/]repository[:tag|@digest] */
  reference: string;
  credentials?: RegistryCredentials;
  caPem?: string;
  insecureHttp: boolean;
  /** os/arch[/variant]; empty means the service's default. */
  platform: string;
  /** name:tag to store it as; else the reference's repository and tag. */
  name?: TagReference;
  signal?: AbortSignal;
}

export type PullEvent = { type: 'progress'; digest: string; done: number; total: number; cached: boolean } | { type: 'image'; image: ImageRecord };

/** Downloads running at once. */
const CONCURRENT_BLOBS = 3;
/** Progress is reported at least every this many bytes of a blob. */
const PROGRESS_STEP = 1024 * 1024;
/** Local failures while writing a blob: the store's problem, not the remote's. */
const LOCAL_FS_ERRORS = ['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE'];

/**
 * Pulls an image from a distribution registry: the manifest (picking the
 * platform from an index), then config and layers straight into the store,
 * each verified against its digest. Blobs already in the store are not
 * downloaded again, so a pull that broke off resumes where it stopped. The
 * rootfs is built before the image is recorded, so an image with malicious
 * layers is never recorded. Yields progress per blob, then the image.
 */
export function pullImage(ctx: RegistryContext, request: PullRequest): AsyncIterable<PullEvent> {
  const events = new PushQueue<PullEvent>();
  runPull(ctx, request, events).then(
    (image) => {
      events.push({ type: 'image', image });
      events.close();
    },
    (err: unknown) => events.fail(err),
  );
  return events;
}

async function runPull(ctx: RegistryContext, request: PullRequest, events: PushQueue<PullEvent>): Promise<ImageRecord> {
  const remote = parseRemoteReference(request.reference);
  if (request.insecureHttp && !isLoopbackHost(remote.host.replace(/:\d+$/, ''))) {
    throw new InvalidReferenceError(request.reference, 'plain HTTP (insecure_http) is only allowed for registries on this machine (127.0.0.1, ::1, localhost)');
  }
  const wanted = parsePlatform(request.platform || ctx.platform);
  const client = new DistributionClient({
    remote,
    insecureHttp: request.insecureHttp,
    ...(request.caPem ? { caPem: request.caPem } : {}),
    ...(request.credentials ? { credentials: request.credentials } : {}),
    timeoutMs: ctx.pullTimeoutMs,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  await client.ping();

  let manifestRef = remote.digest ?? remote.tag ?? 'latest';
  let fetched = await fetchVerifiedManifest(client, manifestRef, remote.digest);
  let parsed = parseManifestOrIndex(fetched.bytes, knownType(fetched.mediaType));
  let indexDigest: string | undefined;
  if (parsed.kind === 'index') {
    indexDigest = fetched.digest;
    const chosen = choosePlatform(parsed.manifests, wanted);
    manifestRef = chosen.digest;
    fetched = await fetchVerifiedManifest(client, chosen.digest, chosen.digest);
    if (fetched.bytes.length !== chosen.size) {
      throw new RemoteRegistryError(
        'corrupt',
        `manifest ${chosen.digest} from ${client.host} is ${fetched.bytes.length} bytes, but the index says ${chosen.size}`,
      );
    }
    parsed = parseManifestOrIndex(fetched.bytes, chosen.mediaType);
  }
  const manifest = parseManifest(fetched.bytes, parsed.mediaType);
  assertRunnableImage(manifest);
  const manifestDigest = fetched.digest;
  const blobs = [manifest.config, ...manifest.layers];

  const releaseBlobs = ctx.blobsInUse.hold([manifestDigest, ...blobs.map((b) => b.digest)]);
  const releaseImage = ctx.imagesInUse.hold([manifestDigest]);
  try {
    await ctx.store.ingest(fetched.bytes, manifestDigest, fetched.bytes.length);
    await downloadAll(ctx, client, blobs, events);
    const checked = await checkImage(ctx.store, manifestDigest, manifest.mediaType, fetched.bytes.length);
    const image: ImportedImage = {
      manifestDigest,
      manifestSize: checked.manifestSize,
      manifest: checked.manifest,
      configDigest: manifest.config.digest,
      config: checked.config.runtime,
      ...(checked.config.created ? { created: checked.config.created } : {}),
      layers: manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
      diffIds: checked.config.diffIds,
      platform: checked.config.platform,
      tags: [],
      format: manifest.mediaType === MediaType.DockerManifest ? 'docker' : 'oci',
      ...(indexDigest ? { indexDigest } : {}),
    };
    const rootfs = await ctx.builder.build(image, ctx.store);
    const name = request.name ?? localNameOf(remote);
    const record = await ctx.catalog.record(image, {
      source: `pull ${client.describe(remote.digest ?? remote.tag)}`,
      tags: name ? [name] : [],
      rootfs,
    });
    ctx.logger.info({ image: record.digest, tags: record.tags, from: client.describe(manifestRef), blobs: imageBlobDigests(image).length }, 'image pulled');
    return record;
  } finally {
    releaseImage();
    releaseBlobs();
  }
}

interface VerifiedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** Fetches a manifest or index and checks its bytes against the digest asked for and the one the registry announced. */
async function fetchVerifiedManifest(client: DistributionClient, reference: string, expected: string | undefined): Promise<VerifiedManifest> {
  const fetched = await client.manifest(reference);
  const digest = digestOf(fetched.bytes);
  if (expected !== undefined && digest !== expected) {
    throw new RemoteRegistryError('corrupt', `the manifest ${client.describe(reference)} does not match its digest: got ${digest}`);
  }
  if (fetched.digestHeader?.startsWith('sha256:') && fetched.digestHeader !== digest) {
    throw new RemoteRegistryError(
      'corrupt',
      `the manifest ${client.describe(reference)} does not match the digest the registry announced (${fetched.digestHeader}); got ${digest}`,
    );
  }
  return { bytes: fetched.bytes, mediaType: fetched.mediaType, digest };
}

function knownType(mediaType: string): string | undefined {
  return isIndexType(mediaType) || isManifestType(mediaType) ? mediaType : undefined;
}

function choosePlatform(manifests: readonly Descriptor[], wanted: ReturnType<typeof parsePlatform>): Descriptor {
  const images = manifests.filter((m) => isManifestType(m.mediaType) && m.annotations['vnd.docker.reference.type'] !== 'attestation-manifest');
  let best: Descriptor | undefined;
  let bestScore = 0;
  for (const m of images) {
    const score = m.platform ? platformScore(wanted, m.platform) : 0;
    if (score > bestScore) {
      best = m;
      bestScore = score;
    }
  }
  if (!best) {
    if (manifests.some((m) => isIndexType(m.mediaType))) throw new ImageFormatError('nested image indexes are not supported in a pull');
    throw new PlatformNotFoundError(formatPlatform(wanted), [...new Set(images.map((m) => (m.platform ? formatPlatform(m.platform) : '?')))]);
  }
  return best;
}

/**
 * Downloads every blob not yet in the store, a few at a time. Every
 * download runs to its end even when another fails, so what was verified
 * stays for the next attempt; the first failure is thrown afterwards.
 */
async function downloadAll(ctx: RegistryContext, client: DistributionClient, blobs: readonly Descriptor[], events: PushQueue<PullEvent>): Promise<void> {
  const queue = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  const errors: unknown[] = [];
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      try {
        await downloadBlob(ctx, client, blob, events);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_BLOBS, queue.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

async function downloadBlob(ctx: RegistryContext, client: DistributionClient, blob: Descriptor, events: PushQueue<PullEvent>): Promise<void> {
  const present = await ctx.store.stat(blob.digest);
  if (present && present.size === blob.size) {
    events.push({ type: 'progress', digest: blob.digest, done: blob.size, total: blob.size, cached: true });
    return;
  }
  events.push({ type: 'progress', digest: blob.digest, done: 0, total: blob.size, cached: false });
  const body = await client.blob(blob.digest);
  try {
    await ctx.store.ingest(withProgress(body, blob, events), blob.digest, blob.size);
  } catch (err) {
    body.destroy();
    if (err instanceof DigestMismatchError) {
      throw new RemoteRegistryError(
        'corrupt',
        `blob ${blob.digest} from ${client.describe()} does not match its digest (got ${err.actual}); the remote copy is corrupt`,
        { cause: err },
      );
    }
    if (err instanceof SizeMismatchError) {
      throw new RemoteRegistryError('corrupt', `blob ${blob.digest} from ${client.describe()} is not the ${blob.size} bytes its manifest says`, { cause: err });
    }
    if (err instanceof RemoteRegistryError || (err as Error).name === 'AbortError' || isErrno(err, ...LOCAL_FS_ERRORS)) throw err;
    throw new RemoteRegistryError('unavailable', `the download of ${blob.digest} from ${client.host} broke off (${(err as Error).message})`, { cause: err });
  }
  events.push({ type: 'progress', digest: blob.digest, done: blob.size, total: blob.size, cached: false });
}

/** Passes a blob's bytes on their way into the store, reporting progress every PROGRESS_STEP bytes. */
async function* withProgress(body: AsyncIterable<Buffer>, blob: Descriptor, events: PushQueue<PullEvent>): AsyncGenerator<Buffer> {
  let done = 0;
  let reported = 0;
  for await (const chunk of body) {
    done += chunk.length;
    if (done - reported >= PROGRESS_STEP && done < blob.size) {
      reported = done;
      events.push({ type: 'progress', digest: blob.digest, done, total: blob.size, cached: false });
    }
    yield chunk;
  }
}
