import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { Health, HealthCheckResponse_ServingStatus } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { ServerReflection } from '@shellwego/contracts/grpc/reflection/v1/reflection_pb';
import { SecretScopeKind, SecretsService, SetSecretRequestSchema } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { capturingLogger } from '@shellwego/testing/logger';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevocationList } from '../pki/index.js';
import { createMtlsClient, createMtlsTransport, expectedService, implement, mtlsSessionOptions, type RunningServer, serve, type TlsMaterial } from './index.js';

let pki: TestPki;
let server: RunningServer;
let admin: TlsMaterial;
let revokedFile: string;
const log = capturingLogger();
let handlerCalls = 0;

beforeAll(async () => {
  pki = await TestPki.create();
  admin = await pki.admin();
  revokedFile = join(await mkdtemp(join(tmpdir(), 'sw-revoked-')), 'revoked.txt');
  await writeFile(revokedFile, '');
  server = await serve({
    name: 'secrets',
    host: '127.0.0.1',
    port: 0,
    tls: await pki.service('secrets'),
    logger: log.logger,
    revoked: await RevocationList.fromFile(revokedFile),
    readMaxBytes: 64 * 1024,
    services: [
      implement(SecretsService, {
        listSecrets() {
          handlerCalls++;
          return { secrets: [] };
        },
      }),
    ],
  });
});

afterAll(async () => {
  await server?.close();
});

function secretsClient(tls: TlsMaterial | Omit<TlsMaterial, 'certPem' | 'keyPem'>) {
  return createMtlsClient(SecretsService, { baseUrl: server.url, server: expectedService('secrets'), tls });
}

async function codeOf(call: Promise<unknown>): Promise<Code | 'ok'> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe('serve: mutual TLS and per-RPC authorization', () => {
  it('admits an admin certificate to an admin RPC', async () => {
    const before = handlerCalls;
    await expect(secretsClient(admin).listSecrets({})).resolves.toBeDefined();
    expect(handlerCalls).toBe(before + 1);
  });

  it('refuses a call without a client certificate before the handler runs', async () => {
    const before = handlerCalls;
    const error = await secretsClient({ caPem: admin.caPem })
      .listSecrets({})
      .catch((e) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect((error as ConnectError).rawMessage).toMatch(/client certificate is required/);
    expect(handlerCalls).toBe(before);
  });

  it('refuses a certificate from another CA', async () => {
    const other = await TestPki.create();
    const foreign = await other.admin();
    const error = await secretsClient({ caPem: admin.caPem, certPem: foreign.certPem, keyPem: foreign.keyPem })
      .listSecrets({})
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect((error as ConnectError).rawMessage).toMatch(/client certificate rejected/);
  });

  it('refuses an expired certificate with a clear reason', async () => {
    const expired = await pki.tls({ kind: 'user', name: 'old', roles: ['admin'] }, -60_000);
    const error = await secretsClient(expired)
      .listSecrets({})
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect((error as ConnectError).rawMessage).toMatch(/CERT_HAS_EXPIRED/);
  });

  it('refuses a revoked certificate once its serial is listed', async () => {
    const user = await pki.tls({ kind: 'user', name: 'leaver', roles: ['admin'] });
    expect(await codeOf(secretsClient(user).listSecrets({}))).toBe('ok');
    await writeFile(revokedFile, `# revoked in test\n${user.serial}\n`);
    const list = await RevocationList.fromFile(revokedFile);
    expect(list.has(user.serial)).toBe(true);
  });

  it('gives PERMISSION_DENIED to a node calling an operator RPC', async () => {
    const before = handlerCalls;
    const error = await secretsClient(await pki.node('n1'))
      .listSecrets({})
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.PermissionDenied);
    expect((error as ConnectError).rawMessage).toBe(
      'node n1 may not call shellwego.secrets.v1.SecretsService/ListSecrets; allowed: users with role admin or users with role viewer',
    );
    expect(handlerCalls).toBe(before);
  });

  it('gives PERMISSION_DENIED to a user with neither the admin nor the viewer role', async () => {
    const viewer = await pki.tls({ kind: 'user', name: 'viewer', roles: [] });
    expect(await codeOf(secretsClient(viewer).listSecrets({}))).toBe(Code.PermissionDenied);
  });

  it('answers UNIMPLEMENTED for contract methods not built yet, after authorization', async () => {
    expect(await codeOf(secretsClient(admin).rotateMasterKey({}))).toBe(Code.Unimplemented);
    expect(await codeOf(secretsClient(await pki.node('n1')).rotateMasterKey({}))).toBe(Code.PermissionDenied);
  });
});

describe('serve: refusals on the request headers, in each protocol', () => {
  it('answers gRPC-Web and Connect (unary and streaming) clients with the right code, counting them once each', async () => {
    const counted: string[] = [];
    const gated = await serve({
      name: 'secrets',
      host: '127.0.0.1',
      port: 0,
      tls: await pki.service('secrets'),
      logger: log.logger,
      services: [implement(SecretsService, { listSecrets: () => ({ secrets: [] }) })],
      countRefused: (method, code) => counted.push(`${method.name} ${Code[code]}`),
    });
    try {
      const node = await pki.node('n1');
      const anonymous = { caPem: admin.caPem };
      const transports = {
        connect: (tls: TlsMaterial | typeof anonymous) =>
          createConnectTransport({ baseUrl: gated.url, httpVersion: '2', nodeOptions: mtlsSessionOptions(tls, expectedService('secrets')) }),
        grpcWeb: (tls: TlsMaterial | typeof anonymous) =>
          createGrpcWebTransport({ baseUrl: gated.url, httpVersion: '2', nodeOptions: mtlsSessionOptions(tls, expectedService('secrets')) }),
      };
      for (const [name, transport] of Object.entries(transports)) {
        const refusedAnonymous = await createClient(SecretsService, transport(anonymous))
          .listSecrets({})
          .catch((e: unknown) => ConnectError.from(e));
        expect(refusedAnonymous, name).toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringMatching(/client certificate is required/) });
        const refusedNode = await createClient(SecretsService, transport(node))
          .listSecrets({})
          .catch((e: unknown) => ConnectError.from(e));
        expect(refusedNode, name).toMatchObject({ code: Code.PermissionDenied, rawMessage: expect.stringMatching(/node n1 may not call/) });
        expect((await createClient(SecretsService, transport(admin)).listSecrets({})).secrets, name).toEqual([]);
        // A server stream over Connect's streaming protocol (its error is in the end-of-stream message).
        const watch = async () => {
          for await (const _ of createClient(Health, transport(anonymous)).watch({ service: '' })) return 'answered';
          return 'ended';
        };
        expect(await watch().catch((e: unknown) => ConnectError.from(e).code), name).toBe(Code.Unauthenticated);
      }
      expect(counted.sort()).toEqual([
        'ListSecrets PermissionDenied',
        'ListSecrets PermissionDenied',
        'ListSecrets Unauthenticated',
        'ListSecrets Unauthenticated',
        'Watch Unauthenticated',
        'Watch Unauthenticated',
      ]);
    } finally {
      await gated.close();
    }
  });
});

describe('serve: a revocation list that cannot be read fails closed', () => {
  it('refuses node and user certificates with UNAVAILABLE while the list is missing or unreadable, and serves again once it reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sw-revoked-gone-'));
    const listPath = join(dir, 'revoked.txt');
    const list = await RevocationList.fromFile(listPath, { watch: true });
    const guarded = await serve({
      name: 'secrets',
      host: '127.0.0.1',
      port: 0,
      tls: await pki.service('secrets'),
      logger: log.logger,
      revoked: list,
      services: [implement(SecretsService, { listSecrets: () => ({ secrets: [] }) })],
    });
    try {
      const call = (tls: TlsMaterial) => createMtlsClient(SecretsService, { baseUrl: guarded.url, server: expectedService('secrets'), tls }).listSecrets({});
      const refusal = await call(admin).catch((e: unknown) => ConnectError.from(e));
      expect(refusal).toMatchObject({
        code: Code.Unavailable,
        rawMessage: expect.stringMatching(/revocation list .*revoked\.txt does not exist.*refused until it can be read/),
      });
      expect(await codeOf(call(await pki.node('n1')))).toBe(Code.Unavailable);
      // A service's certificate is still authenticated (then authorized as usual: not an admin).
      expect(await codeOf(call(await pki.service('scheduler')))).toBe(Code.PermissionDenied);

      // Unreadable (a directory where the file should be): refused too, and the watcher's re-read rejects nothing.
      await mkdir(listPath);
      await list.reload();
      expect(list.unavailable).toMatch(/cannot be read \(EISDIR\)/);
      expect(await codeOf(call(admin))).toBe(Code.Unavailable);

      await rm(listPath, { recursive: true });
      await writeFile(listPath, '');
      await list.reload();
      expect(list.unavailable).toBeUndefined();
      expect(await codeOf(call(admin))).toBe('ok');
    } finally {
      await guarded.close();
      list.close();
    }
  });
});

describe('serve: bad input keeps the server serving', () => {
  it('rejects an oversize message with RESOURCE_EXHAUSTED', async () => {
    const big = secretsClient(admin).setSecret({
      scope: { kind: SecretScopeKind.WORKSPACE },
      name: 'BIG',
      value: new Uint8Array(128 * 1024),
    });
    expect(await codeOf(big)).toBe(Code.ResourceExhausted);
    expect(await codeOf(secretsClient(admin).listSecrets({}))).toBe('ok');
  });

  it('rejects malformed protobuf and an unknown method with clear codes', async () => {
    const raw = async (path: string, body: Uint8Array) => {
      const session = http2.connect(server.url, { ca: admin.caPem, cert: admin.certPem, key: admin.keyPem });
      try {
        const stream = session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        const frame = Buffer.alloc(5 + body.length);
        frame.writeUInt32BE(body.length, 1);
        Buffer.from(body).copy(frame, 5);
        stream.end(frame);
        const status = await new Promise<string>((resolve, reject) => {
          let grpcStatus = '';
          stream.on('response', (headers) => {
            if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
          });
          stream.on('trailers', (trailers) => {
            grpcStatus = String(trailers['grpc-status']);
          });
          stream.on('data', () => undefined);
          stream.on('end', () => resolve(grpcStatus));
          stream.on('error', reject);
        });
        return Number(status);
      } finally {
        session.close();
      }
    };
    const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    expect(await raw('/shellwego.secrets.v1.SecretsService/SetSecret', garbage)).toBe(Code.InvalidArgument);
    const valid = toBinary(SetSecretRequestSchema, create(SetSecretRequestSchema, { name: 'X' }));
    expect(await raw('/shellwego.secrets.v1.SecretsService/NoSuchMethod', valid)).toBe(Code.Unimplemented);
    expect(await codeOf(secretsClient(admin).listSecrets({}))).toBe('ok');
  });

  it('refuses a NUL character in any text field, nested ones included, before the handler runs', async () => {
    const before = handlerCalls;
    const nul = await secretsClient(admin)
      .listSecrets({ scope: { kind: SecretScopeKind.APP, app: 'we\u0000b' } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(nul).toMatchObject({ code: Code.InvalidArgument });
    expect((nul as ConnectError).rawMessage).toBe('scope.app: contains a NUL character (U+0000), which no shellwego name, id or text may hold');
    expect(handlerCalls).toBe(before);
    expect(await codeOf(secretsClient(admin).listSecrets({ scope: { kind: SecretScopeKind.APP, app: 'web' } }))).toBe('ok');
  });
});

describe('serve: health and reflection', () => {
  it('reports SERVING per service and for the server', async () => {
    const health = createMtlsClient(Health, { baseUrl: server.url, server: expectedService('secrets'), tls: admin });
    expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: 'shellwego.secrets.v1.SecretsService' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(await codeOf(health.check({ service: 'no.such.Service' }))).toBe(Code.NotFound);
  });

  it('streams health changes through Watch', async () => {
    const health = createMtlsClient(Health, { baseUrl: server.url, server: expectedService('secrets'), tls: admin });
    const abort = new AbortController();
    const seen: HealthCheckResponse_ServingStatus[] = [];
    const watching = (async () => {
      for await (const res of health.watch({ service: 'custom' }, { signal: abort.signal })) {
        seen.push(res.status);
        if (seen.length === 1) server.health.set('custom', HealthCheckResponse_ServingStatus.SERVING);
        if (seen.length === 2) abort.abort();
      }
    })().catch(() => undefined);
    await watching;
    expect(seen).toEqual([HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN, HealthCheckResponse_ServingStatus.SERVING]);
  });

  it('lists services and serves file descriptors with their dependencies', async () => {
    const reflection = createClient(ServerReflection, createMtlsTransport({ baseUrl: server.url, server: expectedService('secrets'), tls: admin }));
    async function* requests() {
      yield { messageRequest: { case: 'listServices' as const, value: '' } };
      yield { messageRequest: { case: 'fileContainingSymbol' as const, value: 'shellwego.secrets.v1.SecretsService.SetSecret' } };
    }
    const answers = [];
    for await (const res of reflection.serverReflectionInfo(requests())) answers.push(res);
    const list = answers[0]?.messageResponse;
    expect(list?.case).toBe('listServicesResponse');
    const names = list?.case === 'listServicesResponse' ? list.value.service.map((s) => s.name) : [];
    expect(names).toEqual(expect.arrayContaining(['shellwego.secrets.v1.SecretsService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']));
    const files = answers[1]?.messageResponse;
    expect(files?.case).toBe('fileDescriptorResponse');
    expect(files?.case === 'fileDescriptorResponse' ? files.value.fileDescriptorProto.length : 0).toBeGreaterThan(3);
  });
});

describe('serve: request log', () => {
  it('logs one line per RPC with method, caller and code', () => {
    const rpcLines = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'rpc');
    expect(rpcLines.some((l) => l.rpc === 'shellwego.secrets.v1.SecretsService/ListSecrets' && l.code === 'ok')).toBe(true);
    expect(rpcLines.some((l) => l.code === 'permission_denied' && l.caller === 'node n1')).toBe(true);
  });
});

describe('serve: shutdown with calls in flight', () => {
  it('finishes the calls that end within the drain timeout, cancels the rest with UNAVAILABLE, and takes no new ones', async () => {
    const drainTimeoutMs = 1_500;
    const drainLog = capturingLogger();
    let reachedSlow = 0;
    const draining = await serve({
      name: 'secrets',
      host: '127.0.0.1',
      port: 0,
      tls: await pki.service('secrets'),
      logger: drainLog.logger,
      drainTimeoutMs,
      services: [
        implement(SecretsService, {
          // Ends 400 ms after it starts: inside the drain timeout.
          async getMasterKeyStatus() {
            await new Promise((resolve) => setTimeout(resolve, 400));
            return { currentKekId: 'kek-1' };
          },
          // Never ends by itself: only the drain timeout stops it.
          async listSecrets(_request, context) {
            reachedSlow++;
            await new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true }));
            return { secrets: [] };
          },
        }),
      ],
    });
    const client = createMtlsClient(SecretsService, { baseUrl: draining.url, server: expectedService('secrets'), tls: admin });
    const forever = client.listSecrets({}).then(
      () => 'ok' as const,
      (e: unknown) => ConnectError.from(e),
    );
    while (reachedSlow === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const quick = client.getMasterKeyStatus({});
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const closing = draining.close();
    // A call after the GOAWAY does not start on this server.
    const late = await codeOf(createMtlsClient(SecretsService, { baseUrl: draining.url, server: expectedService('secrets'), tls: admin }).listSecrets({}));
    expect((await quick).currentKekId).toBe('kek-1');
    const cut = await forever;
    await closing;
    const tookMs = Date.now() - started;
    expect(cut).toBeInstanceOf(ConnectError);
    expect((cut as ConnectError).code).toBe(Code.Unavailable);
    expect(late).toBe(Code.Unavailable);
    expect(reachedSlow).toBe(1);
    expect(tookMs).toBeGreaterThanOrEqual(drainTimeoutMs - 100);
    expect(drainLog.lines.some((l) => l.includes('drain timeout: cancelling in-flight calls'))).toBe(true);
  });
});

describe('serve: deadlines', () => {
  it("passes the client's deadline to the handler, whose signal aborts when it passes", async () => {
    let abortedAfterMs: number | undefined;
    const deadlines = await serve({
      name: 'secrets',
      host: '127.0.0.1',
      port: 0,
      tls: await pki.service('secrets'),
      logger: capturingLogger().logger,
      services: [
        implement(SecretsService, {
          async listSecrets(_request, context) {
            const started = Date.now();
            await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
            abortedAfterMs = Date.now() - started;
            return { secrets: [] };
          },
        }),
      ],
    });
    try {
      const client = createMtlsClient(SecretsService, { baseUrl: deadlines.url, server: expectedService('secrets'), tls: admin });
      expect(await codeOf(client.listSecrets({}, { timeoutMs: 300 }))).toBe(Code.DeadlineExceeded);
      while (abortedAfterMs === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
      // The handler hears of the deadline (its signal aborts) instead of running on after the client gave up.
      expect(abortedAfterMs).toBeGreaterThanOrEqual(250);
      expect(abortedAfterMs).toBeLessThan(5_000);
    } finally {
      await deadlines.close();
    }
  });
});

describe('serve: shutdown', () => {
  it('drains promptly when no call is in flight', async () => {
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(log.lines.some((l) => l.includes('drain timeout'))).toBe(false);
  });
});
