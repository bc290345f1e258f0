import { stat } from 'node:fs/promises';
import type { RegistryContext } from './registry-context.js';

export interface CollectResult {
  blobsRemoved: number;
  rootfsRemoved: number;
  bytesFreed: number;
}

/**
 * Removes blobs no recorded image references and rootfs builds of images
 * that are gone. Never touches what an import, pull, build or fetch of this
 * process holds or held while the collection ran, a rootfs being built, or
 * a blob younger than the grace period (another replica sharing the store
 * may be about to record an image that uses it). One collection at a time.
 */
export class GarbageCollector {
  private running: Promise<CollectResult> | undefined;

  constructor(private readonly ctx: RegistryContext) {}

  collect(): Promise<CollectResult> {
    this.running ??= this.collectNow().finally(() => (this.running = undefined));
    return this.running;
  }

  private async collectNow(): Promise<CollectResult> {
    const { ctx } = this;
    const blobsHeld = ctx.blobsInUse.track();
    const imagesHeld = ctx.imagesInUse.track();
    const result: CollectResult = { blobsRemoved: 0, rootfsRemoved: 0, bytesFreed: 0 };
    try {
      const referenced = await ctx.catalog.referencedBlobs();
      const cutoff = Date.now() - ctx.gcGraceMs;
      for await (const blob of ctx.store.list()) {
        if (referenced.has(blob.digest) || blobsHeld.seen.has(blob.digest)) continue;
        const st = await stat(ctx.store.path(blob.digest)).catch(() => undefined);
        if (!st || st.mtimeMs > cutoff) continue;
        // Checked again right before removal: a pin taken since the loop began is in `seen`.
        if (blobsHeld.seen.has(blob.digest)) continue;
        if (await ctx.store.remove(blob.digest)) {
          result.blobsRemoved++;
          result.bytesFreed += st.size;
        }
      }
      const images = await ctx.catalog.imageDigests();
      for (const digest of await ctx.builder.cached()) {
        if (images.has(digest) || imagesHeld.seen.has(digest) || ctx.builder.isBuilding(digest)) continue;
        const artifact = await ctx.builder.lookup(digest);
        if (await ctx.builder.remove(digest)) {
          result.rootfsRemoved++;
          result.bytesFreed += artifact?.sizeBytes ?? 0;
        }
      }
      await ctx.catalog.pruneUnreferenced();
      await ctx.store.sweepTemp();
    } finally {
      blobsHeld.stop();
      imagesHeld.stop();
    }
    ctx.logger.info(result, 'garbage collected');
    return result;
  }
}
