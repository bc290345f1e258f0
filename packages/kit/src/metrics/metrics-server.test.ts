import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scrape } from '@shellwego/testing/scrape-metrics';
import { TestPki } from '@shellwego/testing/test-pki';
import { Counter } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevocationList } from '../pki/index.js';
import type { TlsMaterial } from '../rpc/index.js';
import { createMetricsRegistry } from './metrics-registry.js';
import { type MetricsServer, serveMetrics } from './metrics-server.js';

let pki: TestPki;
let server: MetricsServer;
let revokedFile: string;
let revoked: RevocationList;

beforeAll(async () => {
  pki = await TestPki.create();
  revokedFile = join(await mkdtemp(join(tmpdir(), 'sw-metrics-revoked-')), 'revoked.txt');
  await writeFile(revokedFile, '');
  revoked = await RevocationList.fromFile(revokedFile);
  const registry = createMetricsRegistry();
  new Counter({ name: 'y_total', help: 'Y.', registers: [registry] }).inc();
  server = await serveMetrics(registry, { host: '127.0.0.1', port: 0, tls: await pki.service('registry'), revoked });
});

afterAll(async () => {
  await server?.close();
  revoked?.close();
});

describe('metrics endpoint', () => {
  it('serves GET /metrics in the Prometheus text format to a monitoring user, process metrics included, and nothing else', async () => {
    const prometheus = await pki.tls({ kind: 'user', name: 'prometheus', roles: ['metrics'] });
    const ok = await scrape(server.url, prometheus);
    expect(ok.status).toBe(200);
    expect(ok.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.text).toContain('y_total 1');
    expect(ok.text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(ok.text).not.toContain('nodejs_active_handles_total');
    expect((await scrape(server.url.replace('/metrics', '/secrets'), prometheus)).status).toBe(404);
    expect((await scrape(server.url, prometheus, 'POST')).status).toBe(404);
    expect((await scrape(server.url, await pki.admin())).status).toBe(200);
  });

  it('is mutual TLS like every listener: no certificate, a revoked one, or a principal without the role reads nothing', async () => {
    const anonymous = await scrape(server.url, { caPem: pki.ca.certPem });
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).toMatch(/a client certificate is required/);
    expect(anonymous.text).not.toContain('y_total');
    const refusals: [TlsMaterial, RegExp][] = [
      [await pki.node('n1'), /node n1 may not read metrics; allowed: users with role metrics or admin/],
      [await pki.service('scheduler'), /may not read metrics/],
      [await pki.tls({ kind: 'user', name: 'dev', roles: ['developer'] }), /user dev \(roles: developer\) may not read metrics/],
    ];
    for (const [tls, reason] of refusals) {
      const refused = await scrape(server.url, tls);
      expect(refused.status).toBe(403);
      expect(refused.text).toMatch(reason);
      expect(refused.text).not.toContain('y_total');
    }
    const foreign = await (await TestPki.create()).tls({ kind: 'user', name: 'prometheus', roles: ['metrics'] });
    expect((await scrape(server.url, { ...foreign, caPem: pki.ca.certPem })).status).toBe(401);
    const stolen = await pki.tls({ kind: 'user', name: 'prometheus', roles: ['metrics'] });
    await writeFile(revokedFile, `${stolen.serial}\n`);
    await revoked.reload();
    const afterRevocation = await scrape(server.url, stolen);
    expect(afterRevocation.status).toBe(401);
    expect(afterRevocation.text).toMatch(/revoked/);
  });

  it('keeps two registries apart (two services in one process)', async () => {
    const a = createMetricsRegistry();
    const b = createMetricsRegistry();
    new Counter({ name: 'only_in_a_total', help: 'A.', registers: [a] }).inc();
    expect(await a.metrics()).toContain('only_in_a_total 1');
    expect(await b.metrics()).not.toContain('only_in_a_total');
  });
});
