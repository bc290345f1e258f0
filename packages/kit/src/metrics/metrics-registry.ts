// One prom-client registry per service process: its RPC, database, domain and process metrics.
// A registry of its own (not prom-client's global one) so that several services run in one test
// process do not share or clash over series.
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Registry as MetricsRegistry } from 'prom-client';

/** A registry with Node's process metrics (CPU, memory, heap, event loop lag, handles, GC). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these three gauges with a counter's "_total" suffix, which breaks the
  // naming conventions (promtool flags them); the same figures are in nodejs_active_handles,
  // nodejs_active_requests and nodejs_active_resources, by type.
  for (const misnamed of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(misnamed);
  return registry;
}

/** Seconds buckets from 1 ms to 160 s (a VM boot under emulation), for RPCs and lifecycle steps alike. */
export const SECONDS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160];
