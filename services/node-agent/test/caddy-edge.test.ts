// The node's edge proxy against a real Caddy (Debian's caddy) and a real ACME server (Debian's
// pebble, Let's Encrypt's test server): routes by host name to instance addresses over HTTPS, with
// certificates from Caddy's local CA or issued by Pebble, and routes removed again. Everything
// listens on 127.0.0.1; local HTTP servers stand in for the instances.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@shellwego/testing/free-port';
import { capturingLogger } from '@shellwego/testing/logger';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaddyEdge } from '../src/ingress/caddy-edge.js';

let dir: string;
const servers: Server[] = [];
const edges: CaddyEdge[] = [];
const stops: (() => void)[] = [];
const upstreams: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edge-'));
  // Two "instances" of one app, each answering with its own id.
  for (const id of ['instance-a', 'instance-b']) {
    const server = createServer((_req, res) => res.end(`hello from ${id}\n`));
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    servers.push(server);
    upstreams.push(`127.0.0.1:${port}`);
  }
});

afterAll(async () => {
  for (const edge of edges) await edge.stop();
  for (const stop of stops) stop();
  for (const server of servers) server.close();
  await rm(dir, { recursive: true, force: true });
});

/** GET https://<host>:<port>/ through 127.0.0.1, verifying the certificate for `host` against `ca`. */
function get(host: string, port: number, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: host, headers: { host }, ca, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Retries until an answer comes (certificates are obtained after the config is applied). */
async function eventually(call: () => Promise<{ status: number; body: string }>, timeoutMs: number): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}

describe('the edge proxy (real Caddy)', () => {
  it("serves an app's instances by host name over HTTPS with Caddy's local CA, and drops the route when told", { timeout: 120_000 }, async () => {
    const httpsPort = await freePort();
    const edge = await CaddyEdge.start({
      dir: join(dir, 'internal'),
      listen: { httpsPort, httpPort: await freePort(), host: '127.0.0.1' },
      tls: { mode: 'internal' },
      log: capturingLogger().logger,
    });
    edges.push(edge);
    await edge.apply([{ app: 'web', hosts: ['web.apps.test'], upstreams }]);
    const root = await eventually(async () => ({ status: 200, body: await edge.internalRoot() }), 20_000);
    const first = await eventually(() => get('web.apps.test', httpsPort, root.body), 30_000);
    expect(first.status).toBe(200);
    // Both instances answer over repeated requests.
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add((await get('web.apps.test', httpsPort, root.body)).body.trim());
    expect([...seen].sort()).toEqual(['hello from instance-a', 'hello from instance-b']);

    await edge.apply([]);
    expect(JSON.stringify(await edge.currentConfig())).not.toContain('web.apps.test');
    await expect(get('web.apps.test', httpsPort, root.body).then((r) => r.status)).rejects.toThrow();
  });

  it('gets a certificate for the app from an ACME server (Pebble) and serves it', { timeout: 180_000 }, async () => {
    // Pebble serves its directory over HTTPS with a certificate from a CA made here.
    const pki = await TestPki.create();
    const pebbleTls = await pki.tls({ kind: 'service', name: 'registry' });
    const pebbleDir = join(dir, 'pebble');
    await mkdir(pebbleDir, { recursive: true });
    const caFile = join(pebbleDir, 'ca.pem');
    await writeFile(caFile, pebbleTls.caPem);
    await writeFile(join(pebbleDir, 'cert.pem'), pebbleTls.certPem);
    await writeFile(join(pebbleDir, 'key.pem'), pebbleTls.keyPem);
    const [acmePort, managementPort] = [await freePort(), await freePort()];
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(pebbleDir, 'cert.pem'),
        privateKey: join(pebbleDir, 'key.pem'),
        httpPort: await freePort(),
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    };
    await writeFile(join(pebbleDir, 'config.json'), JSON.stringify(config));
    // Every challenge counts as valid: the test has no DNS for its host names.
    const pebble = spawn('pebble', ['-config', join(pebbleDir, 'config.json')], {
      env: { ...process.env, PEBBLE_VA_ALWAYS_VALID: '1', PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      stdio: 'ignore',
    });
    stops.push(() => pebble.kill());
    // The management API's /roots/0 is Pebble's issuing root, regenerated at every start.
    const roots = await eventually(
      () =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: managementPort, path: '/roots/0', ca: pebbleTls.caPem, servername: 'localhost', agent: false },
            (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('error', reject);
          req.end();
        }),
      20_000,
    );
    expect(roots.body).toContain('BEGIN CERTIFICATE');

    const httpsPort = await freePort();
    const edge = await CaddyEdge.start({
      dir: join(dir, 'acme'),
      listen: { httpsPort, httpPort: await freePort(), host: '127.0.0.1' },
      tls: { mode: 'acme', directoryUrl: `https://127.0.0.1:${acmePort}/dir`, trustedRootsPemFile: caFile },
      log: capturingLogger().logger,
    });
    edges.push(edge);
    await edge.apply([{ app: 'shop', hosts: ['shop.apps.test'], upstreams }]);
    // Verified against Pebble's root only: the certificate was issued by Pebble for this host.
    const answer = await eventually(() => get('shop.apps.test', httpsPort, roots.body), 120_000);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatch(/^hello from instance-[ab]/);
  });
});
