import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '@shellwego/kit/pki';
import { TestPlatform } from '@shellwego/testing/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePythonStubs, missingPythonPackages, runPythonClient } from './python-stubs.js';

interface CallResult {
  code: string;
  response?: Record<string, unknown>;
  details?: string;
}

interface ClientResults {
  health_server: CallResult;
  health_service: CallResult;
  list_secrets: CallResult;
}

const secretsService = 'shellwego.secrets.v1.SecretsService';
const missing = missingPythonPackages();
const skip = missing.length > 0 ? `missing Debian packages ${missing.join(', ')}: run bash deploy/setup-host.sh` : undefined;
if (skip) console.warn(`skipping the Python client interop test: ${skip}`);

describe.skipIf(skip !== undefined)(`Python grpcio client with protoc-generated stubs over mTLS${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let platform: TestPlatform;
  let work: string;
  let stubs: string;
  let node: { cert: string; key: string };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shellwego-python-interop-'));
    [platform, stubs] = await Promise.all([TestPlatform.start({ services: ['secrets'] }), generatePythonStubs(join(work, 'gen'))]);
    const ca = await CertificateAuthority.load(await readFile(platform.pki.caCert, 'utf8'), await readFile(platform.pki.caKey, 'utf8'));
    const issued = await ca.issue({ principal: { kind: 'node', id: 'n1' }, validityMs: 3_600_000 });
    node = { cert: join(work, 'node.crt'), key: join(work, 'node.key') };
    await writeFile(node.cert, issued.certPem);
    await writeFile(node.key, issued.keyPem, { mode: 0o600 });
  });

  afterAll(async () => {
    await platform?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function callAs(identity: { cert: string; key: string }): Promise<ClientResults> {
    const stdout = await runPythonClient({
      stubs,
      target: `127.0.0.1:${platform.service('secrets').port}`,
      caCert: platform.pki.caCert,
      cert: identity.cert,
      key: identity.key,
      service: secretsService,
    });
    return JSON.parse(stdout) as ClientResults;
  }

  it('checks health of the server and of SecretsService', async () => {
    const results = await callAs(platform.pki.admin);
    expect(results.health_server).toEqual({ code: 'OK', response: { status: 'SERVING' } });
    expect(results.health_service).toEqual({ code: 'OK', response: { status: 'SERVING' } });
  });

  it('calls SecretsService.ListSecrets as admin', async () => {
    const { list_secrets: listSecrets } = await callAs(platform.pki.admin);
    expect(listSecrets.code, listSecrets.details).toBe('OK');
    expect(Array.isArray(listSecrets.response?.secrets)).toBe(true);
  });

  it('gets PERMISSION_DENIED from ListSecrets with a node certificate', async () => {
    const { list_secrets: listSecrets } = await callAs(node);
    expect(listSecrets.code).toBe('PERMISSION_DENIED');
    expect(listSecrets.details).toContain(`${secretsService}/ListSecrets`);
  });
});
