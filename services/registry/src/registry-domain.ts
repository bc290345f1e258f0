import { join } from 'node:path';
import type { Typed } from '@shellwego/kit/config';
import { openDatabase } from '@shellwego/kit/db';
import { loadGrantVerifier } from '@shellwego/kit/grant';
import type { Logger } from '@shellwego/kit/log';
import { createMetricsRegistry, type MetricsRegistry } from '@shellwego/kit/metrics';
import type { ServiceRegistration } from '@shellwego/kit/rpc';
import type { registryConfig } from './config.js';
import { ImageCatalog } from './image-catalog.js';
import { InUse } from './in-use.js';
import { migrations } from './migrations.js';
import { parsePlatform } from './oci/platform.js';
import type { RegistryContext } from './registry-context.js';
import { createRegistryMetrics } from './registry-metrics.js';
import { registryService } from './registry-service.js';
import { RootfsBuilder, type RootfsEvent } from './rootfs/rootfs-builder.js';
import type { RegistryDatabase } from './schema.js';
import { BlobStore } from './store/blob-store.js';

export type RegistryConfig = Typed<(typeof registryConfig)['settings']>;

export interface OpenedRegistry {
  readonly service: ServiceRegistration;
  readonly context: RegistryContext;
  close(): Promise<void>;
}

/** Opens the registry's database, blob store and rootfs cache and wires the service. */
export async function openRegistry(
  config: RegistryConfig,
  logger: Logger,
  envNames: Readonly<Record<string, string>>,
  metrics: MetricsRegistry = createMetricsRegistry(),
): Promise<OpenedRegistry> {
  try {
    parsePlatform(config.platform);
  } catch (err) {
    throw new Error(`${envNames.platform ?? 'platform'}: ${(err as Error).message}`);
  }
  const verifier = await loadGrantVerifier(config.grantPublicKeys, envNames.grantPublicKeys ?? 'grantPublicKeys');
  const registryMetrics = createRegistryMetrics(metrics);
  const store = await BlobStore.open(config.storeDir);
  await store.sweepTemp();
  const builder = await RootfsBuilder.open({
    cacheDir: join(config.storeDir, 'rootfs'),
    limits: { maxEntries: config.maxImageEntries, maxTotalBytes: config.maxImageBytes },
    headroomPercent: config.rootfsHeadroomPercent,
    maxConcurrentBuilds: config.maxConcurrentBuilds,
    onEvent: (event) => {
      registryMetrics.rootfs(event);
      logBuild(logger, event);
    },
  });
  const database = await openDatabase<RegistryDatabase>({ url: config.database, schema: 'registry', migrations, logger, metrics });
  const context: RegistryContext = {
    store,
    builder,
    catalog: new ImageCatalog(database.db),
    blobsInUse: new InUse(),
    imagesInUse: new InUse(),
    verifier,
    logger,
    platform: config.platform,
    maxImportBytes: config.maxImportBytes,
    gcGraceMs: config.gcGracePeriod,
    pullTimeoutMs: config.pullTimeout,
    metrics: registryMetrics,
  };
  return { service: registryService(context), context, close: () => database.close() };
}

function logBuild(logger: Logger, event: RootfsEvent): void {
  switch (event.type) {
    case 'build-done':
      logger.info(
        {
          image: event.imageDigest,
          ms: event.ms,
          entries: event.apply.entries,
          bytes: event.apply.bytes,
          sizeBytes: event.ext4.sizeBytes,
          skipped: event.apply.skippedNotes,
        },
        'rootfs built',
      );
      return;
    case 'build-failed':
      logger.warn(
        { image: event.imageDigest, ms: event.ms, err: event.error instanceof Error ? event.error.message : String(event.error) },
        'rootfs build failed',
      );
      return;
    default:
      logger.debug(event, 'rootfs');
  }
}
