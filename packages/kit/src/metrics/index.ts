// Prometheus metrics (prom-client): one registry per process, the per-RPC interceptor, /metrics.

// Services declare their domain metrics with prom-client's own classes, through the kit, so the
// whole process shares one prom-client.
export { Counter, Gauge, Histogram } from 'prom-client';
export { createMetricsRegistry, type MetricsRegistry, SECONDS_BUCKETS } from './metrics-registry.js';
export { METRICS_ROLES, type MetricsServer, type MetricsServerOptions, serveMetrics } from './metrics-server.js';
export { type RpcMetrics, rpcMetrics } from './rpc-metrics.js';
