import { webcrypto, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './certificate-authority.js';
import { ensureDevPki } from './dev-pki.js';
import { issuerRefusal } from './issuer-policy.js';
import { introduceNodeIntermediate, retireNodeIntermediate } from './node-intermediates.js';
import { pemCertificates, TrustBundle, TrustBundleError } from './trust-bundle.js';
import { x509 } from './x509-provider.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shellwego-node-ca-'));
  dirs.push(dir);
  return dir;
}

const hour = 3_600_000;
const admin = { kind: 'user', name: 'admin', roles: ['admin'] } as const;

describe('node-issuing intermediates', () => {
  it('are CAs limited to path length 0 with keyCertSign, signed by the root, and bind what they sign to node identities', async () => {
    const dir = await tempDir();
    const root = await CertificateAuthority.create();
    const paths = { bundle: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
    await writeFile(paths.bundle, root.certPem);
    const nodeCa = await introduceNodeIntermediate(root, paths, { cert: join(dir, 'node-ca.crt'), key: join(dir, 'node-ca.key') }, 'node CA 1');

    const parsed = new x509.X509Certificate(nodeCa.certPem);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(true);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)?.pathLength).toBe(0);
    expect((parsed.getExtension(x509.KeyUsagesExtension)?.usages ?? 0) & x509.KeyUsageFlags.keyCertSign).not.toBe(0);
    expect(nodeCa.isRoot).toBe(false);

    const trust = await TrustBundle.fromFile(paths.bundle);
    expect(trust.roots).toHaveLength(1);
    expect(trust.nodeIssuers).toHaveLength(1);
    const node = new X509Certificate((await nodeCa.issue({ principal: { kind: 'node', id: 'n1' }, validityMs: hour })).certPem);
    const forged = new X509Certificate((await nodeCa.issue({ principal: admin, validityMs: hour })).certPem);
    const rootAdmin = new X509Certificate((await root.issue({ principal: admin, validityMs: hour })).certPem);
    expect(trust.issuerOf(node)).toEqual({ role: 'node-issuing', subject: 'CN=node CA 1' });
    expect(issuerRefusal({ kind: 'node', id: 'n1' }, trust.issuerOf(node))).toBeUndefined();
    expect(issuerRefusal(admin, trust.issuerOf(forged))).toMatch(
      /signed by the node-issuing CA "CN=node CA 1", which may sign only spiffe:\/\/shellwego\/node\/<id>/,
    );
    expect(issuerRefusal({ kind: 'service', name: 'secrets' }, trust.issuerOf(forged))).toMatch(/service certificates come from the cluster root CA/);
    expect(issuerRefusal(admin, trust.issuerOf(rootAdmin))).toBeUndefined();

    // Retired: still chains to the root, but nothing it signed names anyone any more.
    expect(await retireNodeIntermediate(paths, nodeCa.certPem)).toBe(true);
    const after = await TrustBundle.fromFile(paths.bundle);
    expect(after.nodeIssuers).toHaveLength(0);
    expect(issuerRefusal({ kind: 'node', id: 'n1' }, after.issuerOf(node))).toMatch(/"CN=node CA 1", which is not a CA of this cluster's trust bundle/);
    await expect(retireNodeIntermediate(paths, root.certPem)).rejects.toThrow(/cluster root/);
  });

  it('refuses a bundle holding something other than roots and pathLen-0 intermediates they signed', async () => {
    const root = await CertificateAuthority.create();
    const stranger = await CertificateAuthority.create();
    const leaf = await root.issue({ principal: admin, validityMs: hour });
    expect(() => TrustBundle.parse(leaf.certPem, 'TLS_CA')).toThrow(TrustBundleError);
    expect(() => TrustBundle.parse(`${root.certPem}${leaf.certPem}`, 'TLS_CA')).toThrow(/certificate 2 \(CN=admin, OU=admin\) is not a CA certificate/);
    const foreign = await stranger.issueIntermediate({ commonName: 'foreign', validityDays: 1 });
    expect(() => TrustBundle.parse(`${root.certPem}${foreign.certPem}`, 'TLS_CA')).toThrow(/is not signed by the bundle's root CA/);
  });

  it('upgrades a home made before intermediates: same root key, re-certified with path length 1, old certificates still verify', async () => {
    const home = await tempDir();
    // What an older ensureDevPki left: a root of path length 0 signing everything.
    const oldRoot = await CertificateAuthority.create({ commonName: 'shellwego development CA' });
    const pathZero = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: new x509.X509Certificate(oldRoot.certPem).subjectName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000 * 365),
      keys: {
        privateKey: await importPrivate(oldRoot.keyPem),
        publicKey: await new x509.X509Certificate(oldRoot.certPem).publicKey.export(),
      },
      signingAlgorithm: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    await mkdir(join(home, 'pki'), { recursive: true });
    await writeFile(join(home, 'pki', 'ca.crt'), pathZero.toString('pem'));
    await writeFile(join(home, 'pki', 'ca.key'), oldRoot.keyPem);
    const legacy = await CertificateAuthority.load(pathZero.toString('pem'), oldRoot.keyPem);
    expect(legacy.pathLength).toBe(0);
    const oldNode = new X509Certificate((await legacy.issue({ principal: { kind: 'node', id: 'old' }, validityMs: hour })).certPem);

    const pki = await ensureDevPki(home);
    const bundle = await readFile(pki.caCert, 'utf8');
    expect(pemCertificates(bundle)).toHaveLength(2);
    const trust = TrustBundle.parse(bundle);
    const [newRoot] = trust.roots;
    expect(newRoot?.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      new X509Certificate(pathZero.toString('pem')).publicKey.export({ type: 'spki', format: 'der' }),
    );
    expect(new x509.X509Certificate(newRoot?.toString() ?? '').getExtension(x509.BasicConstraintsExtension)?.pathLength).toBe(1);
    // Issued by the root before the upgrade: still the root's, still a valid node (until it expires or renews).
    expect(trust.issuerOf(oldNode).role).toBe('root');
    const local = new X509Certificate(await readFile(pki.processes['node-agent'].cert, 'utf8'));
    expect(trust.issuerOf(local).role).toBe('node-issuing');
    expect(pemCertificates(await readFile(pki.processes['node-agent'].cert, 'utf8'))).toHaveLength(2);
    // A second start changes nothing.
    await ensureDevPki(home);
    expect(await readFile(pki.caCert, 'utf8')).toBe(bundle);
  });
});

async function importPrivate(pem: string) {
  const der = x509.PemConverter.decode(pem)[0] as ArrayBuffer;
  return webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
}
