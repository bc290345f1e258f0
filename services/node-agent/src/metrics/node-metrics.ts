// The node agent's metrics: instances by state, boot and start latencies, secret pushes,
// reconcile errors, rootfs fetches and cache size, and whether the Session is open.
import { Counter, Gauge, Histogram, MetricsRegistry } from './metrics-registry.js';

const SECONDS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160];

export interface MetricSources {
  /** Live instances counted by state name ("HEALTHY", ...). */
  readonly instancesByState: () => ReadonlyMap<string, number>;
  readonly sessionConnected: () => boolean;
  readonly rootfsCacheBytes: () => number;
}

export interface NodeMetrics {
  readonly registry: MetricsRegistry;
  /** VM boot requested -> guest agent answering. */
  readonly bootSeconds: Histogram;
  /** Assign received -> workload started. */
  readonly startSeconds: Histogram;
  /** Secret sets delivered into a VM: kind run|refresh, outcome ok|failed. */
  readonly secretPushes: Counter;
  readonly reconcileErrors: Counter;
  /** outcome hit|fetched|failed. */
  readonly rootfsFetches: Counter;
}

export function createNodeMetrics(sources: MetricSources): NodeMetrics {
  const registry = new MetricsRegistry();
  registry.register(
    new Gauge('shellwego_node_agent_instances', 'Instances on this node by lifecycle state.', () =>
      [...sources.instancesByState()].map(([state, value]) => ({ labels: { state }, value })),
    ),
  );
  registry.register(
    new Gauge('shellwego_node_agent_session_connected', '1 while the scheduler Session stream is open.', () => [{ value: sources.sessionConnected() ? 1 : 0 }]),
  );
  registry.register(
    new Gauge('shellwego_node_agent_rootfs_cache_bytes', 'Bytes of root filesystem images cached on this node.', () => [{ value: sources.rootfsCacheBytes() }]),
  );
  registry.register(new Gauge('process_resident_memory_bytes', 'Resident memory of the node agent process.', () => [{ value: process.memoryUsage.rss() }]));
  registry.register(
    new Gauge('nodejs_heap_size_bytes', 'V8 heap of the node agent: used and total.', () => {
      const memory = process.memoryUsage();
      return [
        { labels: { kind: 'used' }, value: memory.heapUsed },
        { labels: { kind: 'total' }, value: memory.heapTotal },
        { labels: { kind: 'external' }, value: memory.external },
      ];
    }),
  );
  return {
    registry,
    bootSeconds: registry.register(new Histogram('shellwego_node_agent_boot_seconds', 'VM boot until its guest agent answers, in seconds.', SECONDS_BUCKETS)),
    startSeconds: registry.register(
      new Histogram('shellwego_node_agent_start_seconds', 'Assignment received until the workload started, in seconds.', SECONDS_BUCKETS),
    ),
    secretPushes: registry.register(
      new Counter('shellwego_node_agent_secret_pushes_total', 'Secret sets pushed into VMs (Run and InjectSecrets), by kind and outcome.'),
    ),
    reconcileErrors: registry.register(
      new Counter('shellwego_node_agent_reconcile_errors_total', 'Errors while reconciling desired instances with the VMs the driver runs.'),
    ),
    rootfsFetches: registry.register(
      new Counter('shellwego_node_agent_rootfs_acquisitions_total', 'Root filesystems acquired for instances, by outcome (hit, fetched, failed).'),
    ),
  };
}
