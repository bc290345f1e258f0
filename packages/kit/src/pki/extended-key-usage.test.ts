// A user certificate is a client certificate only: a server presenting one fails the TLS
// handshake itself, whatever the client pins, while services serve and call with theirs.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from './identity.js';

let pki: TestPki;
const servers: tls.Server[] = [];

beforeAll(async () => {
  pki = await TestPki.create();
});

afterAll(() => {
  for (const server of servers) server.close();
});

/** Serves TLS with `server`'s certificate, requiring a client certificate; resolves with the handshake's outcome. */
async function handshake(server: Principal, client: Principal): Promise<string> {
  const serverTls = await pki.tls(server);
  const clientTls = await pki.tls(client);
  const listener = tls.createServer(
    { ca: serverTls.caPem, cert: serverTls.certPem, key: serverTls.keyPem, requestCert: true, rejectUnauthorized: true },
    (socket) => socket.end(),
  );
  listener.on('tlsClientError', () => {});
  servers.push(listener);
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as AddressInfo;
  return new Promise((resolve) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: 'localhost', ca: clientTls.caPem, cert: clientTls.certPem, key: clientTls.keyPem },
      () => {
        socket.end();
        resolve('connected');
      },
    );
    socket.on('error', (error: Error) => resolve(error.message));
  });
}

describe('extended key usage', () => {
  it('refuses a user certificate presented by a server, during the handshake', async () => {
    const outcome = await handshake({ kind: 'user', name: 'mallory', roles: ['admin'] }, { kind: 'service', name: 'scheduler' });
    expect(outcome).toBe('unsuitable certificate purpose');
  });

  it('accepts a user certificate as a client, and services and nodes as both', async () => {
    expect(await handshake({ kind: 'service', name: 'secrets' }, { kind: 'user', name: 'admin', roles: ['admin'] })).toBe('connected');
    expect(await handshake({ kind: 'node', id: 'node-1' }, { kind: 'service', name: 'scheduler' })).toBe('connected');
    expect(await handshake({ kind: 'service', name: 'scheduler' }, { kind: 'node', id: 'node-1' })).toBe('connected');
  });
});
