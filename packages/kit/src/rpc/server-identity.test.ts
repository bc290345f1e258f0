// Clients pin the principal they mean to reach: a certificate from the cluster CA for another
// principal is refused during the handshake, before any request is sent.
import { ConnectError } from '@connectrpc/connect';
import { Health } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { SecretScopeKind, SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { Principal } from '@shellwego/kit/pki';
import { capturingLogger } from '@shellwego/testing/logger';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMtlsClient, type ExpectedServer, expectedService, implement, type RunningServer, serve, type TlsMaterial } from './index.js';

let pki: TestPki;
let admin: TlsMaterial;
const servers: RunningServer[] = [];
/** Every SetSecret value any of the servers below received. */
const received: Uint8Array[] = [];

async function serverAs(principal: Principal): Promise<RunningServer> {
  const server = await serve({
    name: 'secrets',
    host: '127.0.0.1',
    port: 0,
    tls: await pki.tls(principal),
    logger: capturingLogger().logger,
    services: [
      implement(SecretsService, {
        setSecret(request) {
          received.push(request.value);
          return {};
        },
      }),
    ],
  });
  servers.push(server);
  return server;
}

async function setSecretOn(server: RunningServer, expected: ExpectedServer): Promise<void> {
  const client = createMtlsClient(SecretsService, { baseUrl: server.url, server: expected, tls: admin });
  await client.setSecret({ scope: { kind: SecretScopeKind.WORKSPACE }, name: 'DB_PASSWORD', value: new TextEncoder().encode('canary-9f3b') });
}

beforeAll(async () => {
  pki = await TestPki.create();
  admin = await pki.admin();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('clients pin the server they expect', () => {
  it('refuses a node certificate posing as the secrets service, before sending the request', async () => {
    const impostor = await serverAs({ kind: 'node', id: 'node-7' });
    const error = await setSecretOn(impostor, expectedService('secrets')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).message).toContain('presented spiffe://shellwego/node/node-7, expected spiffe://shellwego/service/secrets');
    expect(received).toEqual([]);
  });

  it('refuses another control service and a user certificate', async () => {
    const registry = await serverAs({ kind: 'service', name: 'registry' });
    await expect(setSecretOn(registry, expectedService('secrets'))).rejects.toThrow(/expected spiffe:\/\/shellwego\/service\/secrets/);
    // A user certificate is a client certificate only (extended key usage): TLS refuses it first.
    const user = await serverAs({ kind: 'user', name: 'mallory', roles: ['admin'] });
    await expect(setSecretOn(user, expectedService('secrets'))).rejects.toThrow(/unsuitable certificate purpose/);
    expect(received).toEqual([]);
  });

  it('talks to the expected service', async () => {
    const genuine = await serverAs({ kind: 'service', name: 'secrets' });
    await setSecretOn(genuine, expectedService('secrets'));
    expect(received).toHaveLength(1);
    received.length = 0;
  });

  it('pins a node by id when the caller knows it, and any node when it does not', async () => {
    const node = await serverAs({ kind: 'node', id: 'node-1' });
    const health = (expected: ExpectedServer) => createMtlsClient(Health, { baseUrl: node.url, server: expected, tls: admin }).check({ service: '' });
    await expect(health({ kind: 'node', id: 'node-1' })).resolves.toBeDefined();
    await expect(health({ kind: 'node' })).resolves.toBeDefined();
    await expect(health({ kind: 'node', id: 'node-2' })).rejects.toThrow(/expected spiffe:\/\/shellwego\/node\/node-2/);
    await expect(health(expectedService('scheduler'))).rejects.toThrow(/expected spiffe:\/\/shellwego\/service\/scheduler/);
  });

  it('accepts from a node intermediate a node only, and nothing once the intermediate is retired from the bundle', async () => {
    const nodeCa = await pki.ca.issueIntermediate({ commonName: 'node CA test', validityDays: 1 });
    const bundle = `${pki.ca.certPem}\n${nodeCa.certPem}`;
    const signedByNodeCa = async (principal: Principal) => {
      const issued = await nodeCa.issue({ principal, ipAddresses: ['127.0.0.1'], validityMs: 3_600_000 });
      const server = await serve({
        name: 'secrets',
        host: '127.0.0.1',
        port: 0,
        // The chain, as a node agent presents it.
        tls: { caPem: bundle, certPem: `${issued.certPem}\n${nodeCa.certPem}`, keyPem: issued.keyPem },
        logger: capturingLogger().logger,
        services: [
          implement(SecretsService, {
            setSecret(request) {
              received.push(request.value);
              return {};
            },
          }),
        ],
      });
      servers.push(server);
      return server;
    };
    const withBundle = { ...admin, caPem: bundle };
    const forged = await signedByNodeCa({ kind: 'service', name: 'secrets' });
    const set = createMtlsClient(SecretsService, { baseUrl: forged.url, server: expectedService('secrets'), tls: withBundle });
    await expect(set.setSecret({ scope: { kind: SecretScopeKind.WORKSPACE }, name: 'DB_PASSWORD', value: new Uint8Array([1]) })).rejects.toThrow(
      /spiffe:\/\/shellwego\/service\/secrets was signed by the node-issuing CA "CN=node CA test", which may sign only/,
    );
    expect(received).toEqual([]);

    const node = await signedByNodeCa({ kind: 'node', id: 'node-9' });
    const health = (tls: TlsMaterial) => createMtlsClient(Health, { baseUrl: node.url, server: { kind: 'node' }, tls }).check({ service: '' });
    await expect(health(withBundle)).resolves.toBeDefined();
    // The root alone still verifies the presented chain; the issuer check is what refuses it.
    await expect(health(admin)).rejects.toThrow(/signed by "CN=node CA test", which is not a CA of this cluster's trust bundle/);
  });
});
