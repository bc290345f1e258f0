import { describe, expect, it } from 'vitest';
import { Counter, Gauge, Histogram, MetricsRegistry } from './metrics-registry.js';
import { serveMetrics } from './metrics-server.js';

describe('metrics exposition', () => {
  it('renders counters, gauges and cumulative histograms in the Prometheus text format', () => {
    const registry = new MetricsRegistry();
    const pushes = registry.register(new Counter('x_pushes_total', 'Pushes.'));
    registry.register(
      new Gauge('x_instances', 'Instances by state.', () => [
        { labels: { state: 'HEALTHY' }, value: 2 },
        { labels: { state: 'say "hi"\n' }, value: 0 },
      ]),
    );
    const boot = registry.register(new Histogram('x_boot_seconds', 'Boot.', [0.5, 1, 5]));
    pushes.inc({ kind: 'run', outcome: 'ok' });
    pushes.inc({ outcome: 'ok', kind: 'run' });
    pushes.inc({ kind: 'refresh', outcome: 'failed' }, 3);
    boot.observe(0.2);
    boot.observe(0.7);
    boot.observe(9);
    expect(registry.render()).toBe(
      [
        '# HELP x_pushes_total Pushes.',
        '# TYPE x_pushes_total counter',
        'x_pushes_total{kind="run",outcome="ok"} 2',
        'x_pushes_total{kind="refresh",outcome="failed"} 3',
        '# HELP x_instances Instances by state.',
        '# TYPE x_instances gauge',
        'x_instances{state="HEALTHY"} 2',
        'x_instances{state="say \\"hi\\"\\n"} 0',
        '# HELP x_boot_seconds Boot.',
        '# TYPE x_boot_seconds histogram',
        'x_boot_seconds_bucket{le="0.5"} 1',
        'x_boot_seconds_bucket{le="1"} 2',
        'x_boot_seconds_bucket{le="5"} 2',
        'x_boot_seconds_bucket{le="+Inf"} 3',
        'x_boot_seconds_sum 9.9',
        'x_boot_seconds_count 3',
        '',
      ].join('\n'),
    );
  });

  it('serves GET /metrics over plain HTTP and nothing else', async () => {
    const registry = new MetricsRegistry();
    registry.register(new Counter('y_total', 'Y.')).inc();
    const server = await serveMetrics(registry, '127.0.0.1', 0);
    try {
      const ok = await fetch(server.url);
      expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await ok.text()).toContain('y_total 1');
      expect((await fetch(server.url.replace('/metrics', '/secrets'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
