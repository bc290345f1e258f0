import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { contractsDir } from '@shellwego/contracts/checks';
import { TestPlatform } from '@shellwego/testing/platform';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
const protoFiles = ['grpc/health/v1/health.proto', 'shellwego/secrets/v1/secrets.proto'];
const loaderOptions: protoLoader.Options = { keepCase: true, enums: String, longs: String, defaults: true };
const secretsService = 'shellwego.secrets.v1.SecretsService';

type Method = protoLoader.MethodDefinition<object, object>;

interface UnaryOutcome {
  error: grpc.ServiceError | null;
  response: object | undefined;
}

function methodOf(definition: protoLoader.PackageDefinition, service: string, name: string): Method {
  const methods = definition[service];
  if (!methods || 'format' in methods) throw new Error(`${service} is not a service in the loaded contract`);
  const method = methods[name];
  if (!method) throw new Error(`${service} has no method ${name}`);
  return method;
}

function unary(client: grpc.Client, method: Method, request: object): Promise<UnaryOutcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, { deadline: Date.now() + 10_000 }, (error, response) =>
      resolve({ error, response }),
    );
  });
}

describe('@grpc/grpc-js client against the connect-node server over mTLS', () => {
  let platform: TestPlatform;
  let work: string;
  let contract: protoLoader.PackageDefinition;
  let admin: grpc.Client;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shellwego-grpc-js-interop-'));
    const descriptorSet = join(work, 'contract.binpb');
    // buf compiles proto/ (the well-known types built in) into a descriptor
    // set; proto-loader reads it without its own .proto parser.
    const build = execa(buf, ['build', ...protoFiles.flatMap((f) => ['--path', `proto/${f}`]), '-o', descriptorSet], {
      cwd: contractsDir,
    });
    [platform] = await Promise.all([TestPlatform.start({ services: ['secrets'] }), build]);
    contract = protoLoader.loadFileDescriptorSetFromBuffer(await readFile(descriptorSet), loaderOptions);
    admin = client(platform.admin.keyPem, platform.admin.certPem);
  });

  afterAll(async () => {
    admin?.close();
    await platform?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function client(keyPem?: string, certPem?: string): grpc.Client {
    const credentials = grpc.credentials.createSsl(
      Buffer.from(platform.admin.caPem),
      keyPem === undefined ? null : Buffer.from(keyPem),
      certPem === undefined ? null : Buffer.from(certPem),
    );
    // The server certificate names localhost too; verifying that name avoids
    // an IP address as TLS server name (which Node warns about).
    return new grpc.Client(`127.0.0.1:${platform.service('secrets').port}`, credentials, {
      'grpc.ssl_target_name_override': 'localhost',
    });
  }

  it('loads the contract from proto/ with @grpc/proto-loader', async () => {
    const fromSource = await protoLoader.load(protoFiles, { ...loaderOptions, includeDirs: [join(contractsDir, 'proto')] });
    const paths = (definition: protoLoader.PackageDefinition) => Object.values(definition[secretsService] ?? {}).map((method: Method) => method.path);
    expect(paths(fromSource)).toEqual(paths(contract));
  });

  it('calls grpc.health.v1.Health/Check (unary)', async () => {
    const { error, response } = await unary(admin, methodOf(contract, 'grpc.health.v1.Health', 'Check'), {
      service: secretsService,
    });
    expect(error).toBeNull();
    expect(response).toEqual({ status: 'SERVING' });
  });

  it('calls SecretsService/ListSecrets as admin (unary)', async () => {
    const { error, response } = await unary(admin, methodOf(contract, secretsService, 'ListSecrets'), {});
    expect(error?.code, error?.details).toBeUndefined();
    expect(response).toHaveProperty('secrets');
    expect(Array.isArray((response as { secrets: unknown }).secrets)).toBe(true);
  });

  it('watches grpc.health.v1.Health/Watch (server streaming) until it cancels', async () => {
    const watch = methodOf(contract, 'grpc.health.v1.Health', 'Watch');
    const call = admin.makeServerStreamRequest(watch.path, watch.requestSerialize, watch.responseDeserialize, {
      service: secretsService,
    });
    const errors: grpc.ServiceError[] = [];
    call.on('error', (error: grpc.ServiceError) => errors.push(error));
    const [first] = (await once(call, 'data')) as [object];
    expect(first).toEqual({ status: 'SERVING' });

    // events.once would reject on the 'error' event that precedes 'status'.
    const ended = new Promise<grpc.StatusObject>((resolve) => call.once('status', resolve));
    call.cancel();
    const status = await ended;
    expect(status.code).toBe(grpc.status.CANCELLED);
    expect(errors.map((e) => e.code)).toEqual([grpc.status.CANCELLED]);
  });

  it('gets UNAUTHENTICATED with the server message without a client certificate', async () => {
    const anonymous = client();
    try {
      const { error } = await unary(anonymous, methodOf(contract, secretsService, 'ListSecrets'), {});
      expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(error?.details).toContain('client certificate is required');
      // The text must arrive as the server wrote it, not percent-encoded.
      expect(error?.details).not.toMatch(/%[0-9A-F]{2}/i);
    } finally {
      anonymous.close();
    }
  });
});
