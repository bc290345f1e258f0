// Certificate renewal over real mTLS against a stand-in for the scheduler's
// RenewNodeCertificate (it signs the CSR with a test CA, for a few seconds only, so renewals come
// quickly): each renewal makes a new key here, stores it 0600, and the next renewal
// authenticates with the renewed certificate.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { principalOf } from '@shellwego/kit/auth';
import { implement, type RunningServer, serve } from '@shellwego/kit/rpc';
import { capturingLogger } from '@shellwego/testing/logger';
import { TestPki } from '@shellwego/testing/test-pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateRenewal } from './certificate-renewal.js';
import { identityOf, identityPaths, loadIdentity, type NodeIdentity } from './identity-store.js';

const VALIDITY_MS = 3_000;
let pki: TestPki;
let server: RunningServer;
let dir: string;
const csrs: string[] = [];

beforeAll(async () => {
  pki = await TestPki.create();
  dir = await mkdtemp(join(tmpdir(), 'na-renew-'));
  server = await serve({
    name: 'scheduler-stand-in',
    host: '127.0.0.1',
    port: 0,
    tls: await pki.service('scheduler'),
    logger: capturingLogger().logger,
    services: [
      implement(NodeService, {
        async renewNodeCertificate(request, context) {
          const principal = principalOf(context);
          if (principal.kind !== 'node') throw new ConnectError('nodes only', Code.PermissionDenied);
          csrs.push(request.csrPem);
          const issued = await pki.ca.signCsr(request.csrPem, { principal, validityMs: VALIDITY_MS });
          return { certificatePem: issued.certPem, expiresAt: timestampFromDate(issued.notAfter) };
        },
      }),
    ],
  });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('CertificateRenewal', () => {
  it('renews before expiry with a fresh local key, stores it 0600, and authenticates with the renewed certificate next time', { timeout: 20_000 }, async () => {
    const first = identityOf('n1', await pki.tls({ kind: 'node', id: 'n1' }, VALIDITY_MS));
    const renewed: NodeIdentity[] = [];
    let wake: () => void = () => undefined;
    const renewal = new CertificateRenewal(first, {
      stateDir: dir,
      schedulerUrls: [server.url],
      log: capturingLogger().logger,
      onRenewed: (identity) => {
        renewed.push(identity);
        wake();
      },
    });
    renewal.start();
    try {
      while (renewed.length < 2) await new Promise<void>((resolve) => (wake = resolve));
    } finally {
      renewal.stop();
    }
    const [one, two] = renewed as [NodeIdentity, NodeIdentity];
    expect(new Set([first.tls.keyPem, one.tls.keyPem, two.tls.keyPem]).size).toBe(3);
    expect(new X509Certificate(two.tls.certPem).subjectAltName).toContain('URI:spiffe://shellwego/node/n1');
    expect(csrs.every((csr) => csr.startsWith('-----BEGIN CERTIFICATE REQUEST-----') && !csr.includes('PRIVATE KEY'))).toBe(true);

    const paths = identityPaths(dir);
    expect((await stat(paths.key)).mode & 0o777).toBe(0o600);
    const stored = await loadIdentity(dir);
    expect(stored?.nodeId).toBe('n1');
    expect(stored?.tls.certPem).toBe(two.tls.certPem);
    expect(await readFile(paths.key, 'utf8')).toBe(two.tls.keyPem);
    // The second renewal was made over mTLS with the first renewed certificate.
    expect(csrs).toHaveLength(2);
  });

  it('refuses a certificate that is not for the key or not for the node', async () => {
    const a = await pki.node('n1');
    const b = await pki.node('n2');
    expect(() => identityOf('n1', { ...a, keyPem: b.keyPem })).toThrow(/does not belong to the node key/);
    expect(() => identityOf('n1', b)).toThrow(/not for node n1/);
  });
});
