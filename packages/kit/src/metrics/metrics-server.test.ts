import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from './metrics-registry.js';
import { serveMetrics } from './metrics-server.js';

describe('metrics endpoint', () => {
  it('serves GET /metrics in the Prometheus text format, process metrics included, and nothing else', async () => {
    const registry = createMetricsRegistry();
    new Counter({ name: 'y_total', help: 'Y.', registers: [registry] }).inc();
    const server = await serveMetrics(registry, '127.0.0.1', 0);
    try {
      const ok = await fetch(server.url);
      expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await ok.text();
      expect(text).toContain('y_total 1');
      expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(text).not.toContain('nodejs_active_handles_total');
      expect((await fetch(server.url.replace('/metrics', '/secrets'))).status).toBe(404);
      expect((await fetch(server.url, { method: 'POST' })).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('keeps two registries apart (two services in one process)', async () => {
    const a = createMetricsRegistry();
    const b = createMetricsRegistry();
    new Counter({ name: 'only_in_a_total', help: 'A.', registers: [a] }).inc();
    expect(await a.metrics()).toContain('only_in_a_total 1');
    expect(await b.metrics()).not.toContain('only_in_a_total');
  });
});
