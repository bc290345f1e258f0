import { createRequire } from 'node:module';
import { TestPlatform } from '@shellwego/testing/platform';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitLogLine, rpcLogLine } from './await-log-line.js';

const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
const secretsService = 'shellwego.secrets.v1.SecretsService';

interface CurlResult {
  /** buf curl exits with the gRPC code shifted left by 3 when the RPC fails. */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

// `buf curl` gets every schema from the server's reflection service: no proto
// files, only the CA and the admin client certificate.
describe('buf curl against a running server, by reflection alone, over mTLS', () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await TestPlatform.start({ services: ['secrets'] });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  async function curl(reflectProtocol: string, args: string[]): Promise<CurlResult> {
    const { caCert, admin } = platform.pki;
    const result = await execa(buf, ['curl', '--cacert', caCert, '--cert', admin.cert, '--key', admin.key, '--reflect-protocol', reflectProtocol, ...args], {
      reject: false,
      timeout: 20_000,
    });
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  describe.each([
    { reflectProtocol: 'grpc-v1', reflectionService: 'grpc.reflection.v1.ServerReflection' },
    { reflectProtocol: 'grpc-v1alpha', reflectionService: 'grpc.reflection.v1alpha.ServerReflection' },
  ])('with reflection protocol $reflectProtocol', ({ reflectProtocol, reflectionService }) => {
    it('lists every service of the server', async () => {
      const secrets = platform.service('secrets');
      const linesBefore = secrets.lines.length;
      const result = await curl(reflectProtocol, ['--list-services', platform.url('secrets')]);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout.split('\n').sort()).toEqual([
        'grpc.health.v1.Health',
        'grpc.reflection.v1.ServerReflection',
        'grpc.reflection.v1alpha.ServerReflection',
        secretsService,
      ]);
      // The server, not buf, tells which reflection version answered.
      await awaitLogLine(secrets, linesBefore, rpcLogLine(`${reflectionService}/ServerReflectionInfo`));
    });

    it('calls grpc.health.v1.Health/Check', async () => {
      const result = await curl(reflectProtocol, ['--protocol', 'grpc', '--data', '{}', `${platform.url('secrets')}/grpc.health.v1.Health/Check`]);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ status: 'SERVING' });
    });

    it(`calls ${secretsService}/ListSecrets`, async () => {
      const result = await curl(reflectProtocol, [
        '--protocol',
        'grpc',
        '--emit-defaults',
        '--data',
        '{}',
        `${platform.url('secrets')}/${secretsService}/ListSecrets`,
      ]);
      expect(result.exitCode, result.stderr).toBe(0);
      const body = JSON.parse(result.stdout) as { secrets?: unknown };
      expect(Array.isArray(body.secrets)).toBe(true);
    });
  });
});
