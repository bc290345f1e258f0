// The registry's own figures: imports and pulls by outcome, bytes pulled from remote registries
// (and layers found in the store instead), root filesystems served from the cache or built,
// rootfs bytes sent to nodes, and garbage collections. Labels are outcomes and sources, never an
// image name, a digest or a remote host.
import { Counter, Histogram, type MetricsRegistry, SECONDS_BUCKETS } from '@shellwego/kit/metrics';
import type { RootfsEvent } from './rootfs/rootfs-builder.js';

export interface RegistryMetrics {
  readonly imports: Counter<'outcome'>;
  readonly pulls: Counter<'outcome'>;
  /** Blob bytes a pull downloaded from the remote registry. */
  readonly pulledBytes: Counter;
  /** Blobs of a pull by source: remote (downloaded) or cache (already in the store). */
  readonly pulledBlobs: Counter<'source'>;
  readonly rootfsSentBytes: Counter;
  readonly gcRuns: Counter<'outcome'>;
  readonly gcFreedBytes: Counter;
  /** Counts a rootfs builder event (cache hit, coalesced wait, build done or failed). */
  rootfs(event: RootfsEvent): void;
}

export function createRegistryMetrics(registry: MetricsRegistry): RegistryMetrics {
  const registers = [registry];
  const rootfsRequests = new Counter({
    name: 'shellwego_registry_rootfs_requests_total',
    help: 'Root filesystems asked of the builder, by result: cache_hit, coalesced (waited for a build under way), built, build_failed.',
    labelNames: ['result'],
    registers,
  });
  const buildSeconds = new Histogram({
    name: 'shellwego_registry_rootfs_build_seconds',
    help: 'Time to build an ext4 root filesystem from an image, in seconds.',
    buckets: [...SECONDS_BUCKETS],
    registers,
  });
  return {
    imports: new Counter({ name: 'shellwego_registry_imports_total', help: 'ImportImage calls by outcome (ok, failed).', labelNames: ['outcome'], registers }),
    pulls: new Counter({ name: 'shellwego_registry_pulls_total', help: 'PullImage calls by outcome (ok, failed).', labelNames: ['outcome'], registers }),
    pulledBytes: new Counter({ name: 'shellwego_registry_pulled_bytes_total', help: 'Blob bytes downloaded from remote registries by pulls.', registers }),
    pulledBlobs: new Counter({
      name: 'shellwego_registry_pulled_blobs_total',
      help: 'Blobs of pulled images by source: remote (downloaded) or cache (already in the store).',
      labelNames: ['source'],
      registers,
    }),
    rootfsSentBytes: new Counter({
      name: 'shellwego_registry_rootfs_sent_bytes_total',
      help: 'Root filesystem bytes sent to nodes by FetchRootfs.',
      registers,
    }),
    gcRuns: new Counter({ name: 'shellwego_registry_gc_runs_total', help: 'Garbage collections by outcome (ok, failed).', labelNames: ['outcome'], registers }),
    gcFreedBytes: new Counter({
      name: 'shellwego_registry_gc_freed_bytes_total',
      help: 'Bytes of blobs and root filesystems removed by garbage collection.',
      registers,
    }),
    rootfs(event) {
      switch (event.type) {
        case 'cache-hit':
          rootfsRequests.inc({ result: 'cache_hit' });
          break;
        case 'coalesced':
          rootfsRequests.inc({ result: 'coalesced' });
          break;
        case 'build-done':
          rootfsRequests.inc({ result: 'built' });
          buildSeconds.observe(event.ms / 1000);
          break;
        case 'build-failed':
          rootfsRequests.inc({ result: 'build_failed' });
          break;
        case 'build-start':
          break;
      }
    },
  };
}
