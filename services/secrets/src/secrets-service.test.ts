import http2 from 'node:http2';
import { create, toBinary } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { GrantSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { Health, HealthCheckResponse_ServingStatus } from '@shellwego/contracts/grpc/health/v1/health_pb';
import type { SecretScope } from '@shellwego/contracts/secrets/v1/secrets_pb';
import {
  AuditAction,
  AuditOutcome,
  SecretScopeKind,
  SecretScopeSchema,
  SecretsService,
  SetSecretRequestSchema,
} from '@shellwego/contracts/secrets/v1/secrets_pb';
import { generateGrantKeyPair, loadGrantSigningKey, signGrant } from '@shellwego/kit/grant';
import type { RunningServer, TlsMaterial } from '@shellwego/kit/rpc';
import { createMtlsClient, expectedService, serve } from '@shellwego/kit/rpc';
import { capturingLogger } from '@shellwego/testing/logger';
import { TestPki } from '@shellwego/testing/test-pki';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIGEST, SecretsHarness } from '../test/support/secrets-harness.js';

let harness: SecretsHarness;
let server: RunningServer;
let serverLog: string[];
let admin: TlsMaterial;
let node1: TlsMaterial;
let node2: TlsMaterial;
let scheduler: TlsMaterial;

beforeAll(async () => {
  const pki = await TestPki.create();
  [admin, node1, node2, scheduler] = await Promise.all([pki.admin(), pki.node('n1'), pki.node('n2'), pki.service('scheduler')]);
  harness = await SecretsHarness.open();
  const captured = capturingLogger();
  serverLog = captured.lines;
  server = await serve({
    name: 'secrets',
    host: '127.0.0.1',
    port: 0,
    tls: await pki.service('secrets'),
    services: [harness.domain.service],
    logger: captured.logger,
    onRefused: (call) => harness.domain.onRefused(call),
  });
  const shop = { kind: SecretScopeKind.APP, app: 'shop' };
  await client(admin).setSecret({ scope: shop, name: 'DB_PASSWORD', value: Buffer.from('db-secret') });
  await client(admin).setSecret({ scope: { kind: SecretScopeKind.WORKSPACE }, name: 'API_KEY', value: Buffer.from('api-secret') });
});

afterAll(async () => {
  await server?.close();
  await harness?.close();
});

function client(tls: TlsMaterial): Client<typeof SecretsService> {
  return createMtlsClient(SecretsService, { baseUrl: server.url, server: expectedService('secrets'), tls });
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('expected the call to fail');
}

const names = ['DB_PASSWORD', 'API_KEY'];
const grantFor = (nodeId: string, overrides: { now?: Date; ttlMs?: number; instanceId?: string } = {}): Grant =>
  harness.grant({ nodeId, app: 'shop', secretNames: names, instanceId: overrides.instanceId ?? 'i-1', ttlMs: overrides.ttlMs ?? 60_000 }, overrides.now);

async function deniedResolves(): Promise<Array<{ reason: string; instanceId: string; principal: string }>> {
  const page = await client(admin).listAuditEvents({ action: AuditAction.RESOLVE, outcome: AuditOutcome.DENIED, page: { pageSize: 1000 } });
  return page.events.map((e) => ({ reason: e.reason, instanceId: e.instanceId, principal: e.principal }));
}

describe('ResolveSecrets over mTLS checks the grant against the calling node', () => {
  it('releases the values to the node the grant names', async () => {
    const res = await client(node1).resolveSecrets({ grant: grantFor('n1') });
    expect(res.secrets.map((s) => [s.name, Buffer.from(s.value).toString(), s.version])).toEqual([
      ['DB_PASSWORD', 'db-secret', 1],
      ['API_KEY', 'api-secret', 1],
    ]);
    const granted = await client(admin).listAuditEvents({ action: AuditAction.RESOLVE, outcome: AuditOutcome.GRANTED });
    expect(granted.events.at(-1)).toMatchObject({
      principal: 'spiffe://shellwego/node/n1',
      instanceId: 'i-1',
      scope: { kind: SecretScopeKind.APP, app: 'shop' },
      secrets: [
        { name: 'DB_PASSWORD', version: 1 },
        { name: 'API_KEY', version: 1 },
      ],
    });
  });

  it('refuses every bad grant with PERMISSION_DENIED (INVALID_ARGUMENT when absent) and audits each refusal', async () => {
    const before = (await deniedResolves()).length;
    const good = grantFor('n1', { instanceId: 'i-wrong-node' });
    const flipped = Uint8Array.from(good.claims);
    flipped[3] = (flipped[3] ?? 0) ^ 0x01;
    const otherKey = loadGrantSigningKey(generateGrantKeyPair().privateKeyPem);
    const cases: Array<{ caller: TlsMaterial; grant: Grant | undefined; code: Code; reason: RegExp; instanceId: string }> = [
      {
        caller: node2,
        grant: good,
        code: Code.PermissionDenied,
        reason: /^wrong-node: the grant was issued for node n1, but the caller is node n2/,
        instanceId: 'i-wrong-node',
      },
      {
        caller: node1,
        grant: grantFor('n1', { now: new Date(Date.now() - 120_000), instanceId: 'i-expired' }),
        code: Code.PermissionDenied,
        reason: /^expired: the grant for instance i-expired expired at/,
        instanceId: 'i-expired',
      },
      {
        caller: node1,
        grant: create(GrantSchema, { ...good, claims: flipped }),
        code: Code.PermissionDenied,
        reason: /^bad-signature: the grant signature does not verify/,
        instanceId: '',
      },
      {
        caller: node1,
        grant: create(GrantSchema, { claims: good.claims, keyId: good.keyId }),
        code: Code.PermissionDenied,
        reason: /^bad-signature: the grant is unsigned/,
        instanceId: '',
      },
      {
        caller: node1,
        grant: signGrant(
          { audience: 'secrets', instanceId: 'i-x', app: 'shop', nodeId: 'n1', secretNames: names, imageDigest: DIGEST, ttlMs: 60_000 },
          otherKey,
        ),
        code: Code.PermissionDenied,
        reason: /^unknown-key: the grant was signed with key [0-9a-f]{16}, which is not trusted here/,
        instanceId: '',
      },
      {
        caller: node1,
        grant: create(GrantSchema, { claims: Uint8Array.of(0xff, 0xff, 0x01), signature: new Uint8Array(10), keyId: good.keyId }),
        code: Code.PermissionDenied,
        reason: /^malformed: the grant signature is 10 bytes/,
        instanceId: '',
      },
      { caller: node1, grant: undefined, code: Code.InvalidArgument, reason: /^missing: no grant was sent/, instanceId: '' },
    ];
    for (const c of cases) {
      const err = await failure(client(c.caller).resolveSecrets(c.grant === undefined ? {} : { grant: c.grant }));
      expect(err.code, c.reason.source).toBe(c.code);
      expect(err.rawMessage).toMatch(/^grant refused: /);
    }
    const denied = (await deniedResolves()).slice(before);
    expect(denied).toHaveLength(cases.length);
    for (const [i, c] of cases.entries()) {
      expect(denied[i]?.reason).toMatch(c.reason);
      expect(denied[i]?.instanceId).toBe(c.instanceId);
    }
    expect(denied[0]?.principal).toBe('spiffe://shellwego/node/n2');
  });

  it('refuses callers that are not nodes before the handler runs', async () => {
    for (const tls of [admin, scheduler]) {
      const err = await failure(client(tls).resolveSecrets({ grant: grantFor('n1') }));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toMatch(/may not call shellwego\.secrets\.v1\.SecretsService\/ResolveSecrets; allowed: nodes/);
    }
    const refusals = serverLog.filter((line) => line.includes('ResolveSecrets') && line.includes('permission_denied') && line.includes('user admin'));
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    const audited = await client(admin).listAuditEvents({ action: AuditAction.RESOLVE, outcome: AuditOutcome.DENIED, page: { pageSize: 1000 } });
    for (const principal of ['spiffe://shellwego/user/admin', 'spiffe://shellwego/service/scheduler']) {
      const entry = audited.events.find((e) => e.principal === principal);
      expect(entry?.reason, principal).toMatch(/^not-a-node: .* may not call shellwego\.secrets\.v1\.SecretsService\/ResolveSecrets/);
    }
  });

  it('tells the scheduler the workspace secret names and nothing more; nodes not even that', async () => {
    const { names } = await client(scheduler).listWorkspaceSecretNames({});
    expect(names).toContain('API_KEY');
    expect(names).not.toContain('DB_PASSWORD');
    expect((await client(admin).listWorkspaceSecretNames({})).names).toEqual(names);
    expect((await failure(client(scheduler).listSecrets({}))).code).toBe(Code.PermissionDenied);
    expect((await failure(client(node1).listWorkspaceSecretNames({}))).code).toBe(Code.PermissionDenied);
  });

  it('refuses nodes on the admin RPCs', async () => {
    expect((await failure(client(node1).listSecrets({}))).code).toBe(Code.PermissionDenied);
    expect((await failure(client(node1).setSecret({ scope: { kind: SecretScopeKind.WORKSPACE }, name: 'X', value: new Uint8Array(1) }))).code).toBe(
      Code.PermissionDenied,
    );
  });
});

describe('bad input gets a clear code, writes nothing and leaves the service serving', () => {
  async function snapshot(): Promise<string> {
    const versions = await sql<{ n: bigint }>`SELECT count(*) AS n FROM secret_versions`.execute(harness.domain.db);
    const counters = await sql<{ s: bigint | null }>`SELECT sum(last_version) AS s FROM secrets`.execute(harness.domain.db);
    const sets = await sql<{ n: bigint }>`SELECT count(*) AS n FROM audit_events WHERE action IN ('set', 'delete')`.execute(harness.domain.db);
    return `${versions.rows[0]?.n}/${counters.rows[0]?.s}/${sets.rows[0]?.n}`;
  }

  async function stillServing(): Promise<void> {
    const health = createMtlsClient(Health, { baseUrl: server.url, server: expectedService('secrets'), tls: admin });
    expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await client(admin).listSecrets({})).secrets.length).toBeGreaterThan(0);
  }

  it('answers each bad request with the right code', async () => {
    const before = await snapshot();
    const ws: SecretScope = create(SecretScopeSchema, { kind: SecretScopeKind.WORKSPACE });
    const cases: Array<{ call: () => Promise<unknown>; code: Code; message: RegExp }> = [
      {
        call: () => client(admin).setSecret({ scope: ws, name: 'BIG', value: new Uint8Array(64 * 1024 + 1) }),
        code: Code.ResourceExhausted,
        message: /^value: 65537 bytes is over the 65536-byte limit/,
      },
      {
        call: () => client(admin).setSecret({ scope: ws, name: 'HUGE', value: new Uint8Array(5 * 1024 * 1024) }),
        code: Code.ResourceExhausted,
        message: /message size|larger than|exceeds|limit/i,
      },
      {
        call: () => client(admin).setSecret({ scope: ws, name: '1BAD', value: new Uint8Array(1) }),
        code: Code.InvalidArgument,
        message: /^name: "1BAD" is not a valid secret name/,
      },
      { call: () => client(admin).setSecret({ scope: ws, name: 'SHELLWEGO_X', value: new Uint8Array(1) }), code: Code.InvalidArgument, message: /reserved/ },
      {
        call: () => client(admin).setSecret({ scope: ws, name: 'A'.repeat(129), value: new Uint8Array(1) }),
        code: Code.InvalidArgument,
        message: /at most 128/,
      },
      {
        call: () => client(admin).setSecret({ scope: { kind: 7 as SecretScopeKind }, name: 'X', value: new Uint8Array(1) }),
        code: Code.InvalidArgument,
        message: /^scope\.kind: 7 is not a known scope kind/,
      },
      { call: () => client(admin).setSecret({ name: 'X', value: new Uint8Array(1) }), code: Code.InvalidArgument, message: /^scope: a scope is required/ },
      {
        call: () => client(admin).setSecret({ scope: { kind: SecretScopeKind.APP, app: 'Not An App' }, name: 'X', value: new Uint8Array(1) }),
        code: Code.InvalidArgument,
        message: /^scope\.app: /,
      },
      { call: () => client(admin).deleteSecret({ scope: ws, name: 'bad-name' }), code: Code.InvalidArgument, message: /^name: / },
      {
        call: () => client(admin).listSecrets({ scope: { kind: SecretScopeKind.UNSPECIFIED } }),
        code: Code.InvalidArgument,
        message: /^scope\.kind: is unspecified/,
      },
      {
        call: () => client(admin).listAuditEvents({ page: { pageToken: 'garbage' } }),
        code: Code.InvalidArgument,
        message: /^page\.page_token: is not a page token/,
      },
      {
        call: () => client(admin).listAuditEvents({ action: 42 as AuditAction }),
        code: Code.InvalidArgument,
        message: /^action: 42 is not a known audit action/,
      },
    ];
    for (const c of cases) {
      const err = await failure(c.call());
      expect(err.code, c.message.source).toBe(c.code);
      expect(err.rawMessage).toMatch(c.message);
      await stillServing();
    }
    expect(await snapshot()).toBe(before);
  });

  it('answers undecodable protobuf with INVALID_ARGUMENT', async () => {
    const before = await snapshot();
    const raw = async (body: Uint8Array): Promise<number> => {
      const session = http2.connect(server.url, { ca: admin.caPem, cert: admin.certPem, key: admin.keyPem });
      try {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/shellwego.secrets.v1.SecretsService/SetSecret',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        const frame = Buffer.alloc(5 + body.length);
        frame.writeUInt32BE(body.length, 1);
        Buffer.from(body).copy(frame, 5);
        stream.end(frame);
        return await new Promise<number>((resolve, reject) => {
          let status = '';
          stream.on('response', (headers) => {
            if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
          });
          stream.on('trailers', (trailers) => {
            status = String(trailers['grpc-status']);
          });
          stream.on('data', () => undefined);
          stream.on('end', () => resolve(Number(status)));
          stream.on('error', reject);
        });
      } finally {
        session.close();
      }
    };
    expect(await raw(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f, 0x01))).toBe(Code.InvalidArgument);
    // A valid message cut off in the middle of the value field.
    const whole = toBinary(
      SetSecretRequestSchema,
      create(SetSecretRequestSchema, { scope: { kind: SecretScopeKind.WORKSPACE }, name: 'CUT', value: new Uint8Array(100) }),
    );
    expect(await raw(whole.subarray(0, whole.length - 10))).toBe(Code.InvalidArgument);
    await stillServing();
    expect(await snapshot()).toBe(before);
  });
});
