// The node agent's metrics: instances by state, boot and start latencies, secret pushes,
// reconcile errors, rootfs fetches and cache size, and whether the Session is open. They live in
// the process's registry (served by the kit on METRICS_LISTEN) beside the RPC and process metrics.
import { Counter, Gauge, Histogram, type MetricsRegistry, SECONDS_BUCKETS } from '@shellwego/kit/metrics';

const NODE_STATES = ['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'STOPPING', 'STOPPED', 'FAILED'];

export interface MetricSources {
  /** Live instances counted by state name ("HEALTHY", ...). */
  readonly instancesByState: () => ReadonlyMap<string, number>;
  readonly sessionConnected: () => boolean;
  readonly rootfsCacheBytes: () => number;
  /** The guests' own figures (from their Health answers), summed over the node's instances. */
  readonly guests: () => { reporting: number; memoryTotalBytes: number; memoryAvailableBytes: number; agentResidentBytes: number };
}

export interface NodeMetrics {
  /** VM boot requested -> guest agent answering. */
  readonly bootSeconds: Histogram;
  /** Assign received -> workload started. */
  readonly startSeconds: Histogram;
  /** Secret sets delivered into a VM: kind run|refresh, outcome ok|failed. */
  readonly secretPushes: Counter<'kind' | 'outcome'>;
  readonly reconcileErrors: Counter;
  /** outcome hit|fetched|failed. */
  readonly rootfsFetches: Counter<'outcome'>;
}

export function createNodeMetrics(registry: MetricsRegistry, sources: MetricSources): NodeMetrics {
  const registers = [registry];
  new Gauge({
    name: 'shellwego_node_agent_instances',
    help: 'Instances on this node by lifecycle state.',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      // Every state a node reports is a series from the start (0 until used), so a query by state
      // sees an empty node as zeros rather than as nothing.
      for (const state of NODE_STATES) this.set({ state }, 0);
      for (const [state, count] of sources.instancesByState()) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'shellwego_node_agent_session_connected',
    help: '1 while the scheduler Session stream is open.',
    registers,
    collect() {
      this.set(sources.sessionConnected() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'shellwego_node_agent_rootfs_cache_bytes',
    help: 'Bytes of root filesystem images cached on this node.',
    registers,
    collect() {
      this.set(sources.rootfsCacheBytes());
    },
  });
  new Gauge({
    name: 'shellwego_node_agent_guests_reporting',
    help: 'Instances whose guest agent has reported its figures through Health.',
    registers,
    collect() {
      this.set(sources.guests().reporting);
    },
  });
  new Gauge({
    name: 'shellwego_node_agent_guest_memory_bytes',
    help: "Memory of this node's guests as their kernels report it, summed: kind total or available.",
    labelNames: ['kind'],
    registers,
    collect() {
      const guests = sources.guests();
      this.set({ kind: 'total' }, guests.memoryTotalBytes);
      this.set({ kind: 'available' }, guests.memoryAvailableBytes);
    },
  });
  new Gauge({
    name: 'shellwego_node_agent_guest_agent_resident_bytes',
    help: "Resident memory of this node's guest agents (inside their VMs), summed.",
    registers,
    collect() {
      this.set(sources.guests().agentResidentBytes);
    },
  });
  return {
    bootSeconds: new Histogram({
      name: 'shellwego_node_agent_boot_seconds',
      help: 'VM boot until its guest agent answers, in seconds.',
      buckets: [...SECONDS_BUCKETS],
      registers,
    }),
    startSeconds: new Histogram({
      name: 'shellwego_node_agent_start_seconds',
      help: 'Assignment received until the workload started, in seconds.',
      buckets: [...SECONDS_BUCKETS],
      registers,
    }),
    secretPushes: new Counter({
      name: 'shellwego_node_agent_secret_pushes_total',
      help: 'Secret sets pushed into VMs (Run and InjectSecrets), by kind and outcome.',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'shellwego_node_agent_reconcile_errors_total',
      help: 'Errors while reconciling desired instances with the VMs the driver runs.',
      registers,
    }),
    rootfsFetches: new Counter({
      name: 'shellwego_node_agent_rootfs_acquisitions_total',
      help: 'Root filesystems acquired for instances, by outcome (hit, fetched, failed).',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
