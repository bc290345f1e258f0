import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DistributionClient } from './distribution-client.js';
import { RemoteRegistryError } from './remote-error.js';

/** Stand-ins for a registry, its token service and a blob storage host, on loopback HTTP. */
async function listen(handler: http.RequestListener): Promise<{ server: http.Server; origin: string }> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('DistributionClient (against stand-in servers)', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('answers a bearer challenge with a token for the scope, follows a blob redirect to another host, and sends no credentials there', async () => {
    const seen: { storageAuth?: string | undefined; tokenQuery?: string; tokenAuth?: string | undefined } = {};
    const storage = await listen((req, res) => {
      seen.storageAuth = req.headers.authorization;
      res.end('blob bytes');
    });
    const tokens = await listen((req, res) => {
      seen.tokenQuery = req.url ?? '';
      seen.tokenAuth = req.headers.authorization;
      res.end(JSON.stringify({ token: 'tok-123' }));
    });
    const registry = await listen((req, res) => {
      if (req.headers.authorization !== 'Bearer tok-123') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/token",service="stand-in",scope="repository:team/app:pull"` }).end();
        return;
      }
      if (req.url === '/v2/') res.end('{}');
      else res.writeHead(307, { location: `${storage.origin}/bucket/blob?signature=x` }).end();
    });
    servers.push(storage.server, tokens.server, registry.server);
    const client = new DistributionClient({
      remote: { host: registry.origin.slice('http://'.length), repository: 'team/app', tag: '1' },
      insecureHttp: true,
      credentials: { username: 'u', password: Buffer.from('p') },
      timeoutMs: 5000,
    });
    await client.ping();
    const body = await client.blob(`sha256:${'0'.repeat(64)}`);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('blob bytes');
    expect(seen.tokenQuery).toBe('/token?service=stand-in&scope=repository%3Ateam%2Fapp%3Apull');
    expect(seen.tokenAuth).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(seen.storageAuth).toBeUndefined();
  });

  it('reports a missing tag as not-found and refused credentials as unauthenticated', async () => {
    const registry = await listen((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="stand-in"' }).end();
        return;
      }
      if (req.headers.authorization !== `Basic ${Buffer.from('u:right').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="stand-in"' }).end();
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    });
    servers.push(registry.server);
    const host = registry.origin.slice('http://'.length);
    const make = (password: string) =>
      new DistributionClient({
        remote: { host, repository: 'app', tag: 'nope' },
        insecureHttp: true,
        credentials: { username: 'u', password: Buffer.from(password) },
        timeoutMs: 5000,
      });
    const missing = await make('right')
      .manifest('nope')
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(RemoteRegistryError);
    expect(missing).toMatchObject({ kind: 'not-found' });
    expect((missing as Error).message).toContain('MANIFEST_UNKNOWN manifest unknown');
    const refused = await make('wrong')
      .ping()
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ kind: 'unauthenticated' });
    expect((refused as Error).message).not.toContain('wrong');
  });
});
