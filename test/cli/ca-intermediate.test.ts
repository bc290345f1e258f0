// The node intermediate made the least-authority way, with the CLI: its key is made on the
// scheduler's host (`ca request`), only the CSR travels to the root's machine (`ca intermediate
// --csr`), and the certificate comes back; `ca retire` takes it out of the trust bundle.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CertificateAuthority, pemCertificates, TrustBundle } from '@shellwego/kit/pki';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'cli/bin/shellwego.js');
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('shellwego ca request, intermediate --csr and retire', () => {
  it("certifies a key made on the scheduler's host without the key leaving it, and retires it", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-node-ca-'));
    dirs.push(dir);
    const rootDir = join(dir, 'operator');
    const schedulerDir = join(dir, 'scheduler-host');
    await mkdir(rootDir);
    await mkdir(schedulerDir);
    const bundle = join(rootDir, 'ca.crt');
    const sw = (...args: string[]) => run(process.execPath, [cli, '--ca', bundle, ...args], { cwd: root });

    await sw('ca', 'init');
    await sw('ca', 'request', '--out', schedulerDir, '--name', 'node-ca-2');
    expect(((await stat(join(schedulerDir, 'node-ca-2.key'))).mode & 0o777).toString(8)).toBe('600');
    // Only the CSR is carried over to the operator's machine.
    await writeFile(join(rootDir, 'node-ca-2.csr'), await readFile(join(schedulerDir, 'node-ca-2.csr')));
    await sw('ca', 'intermediate', '--csr', join(rootDir, 'node-ca-2.csr'), '--out', rootDir, '--name', 'node-ca-2');
    expect((await readdir(rootDir)).sort()).toEqual(['ca.crt', 'ca.key', 'node-ca-2.crt', 'node-ca-2.csr']);

    const certPem = await readFile(join(rootDir, 'node-ca-2.crt'), 'utf8');
    const trust = TrustBundle.parse(await readFile(bundle, 'utf8'));
    expect(trust.nodeIssuers.map((c) => c.fingerprint256)).toEqual([new X509Certificate(certPem).fingerprint256]);
    // The scheduler host's key is the certificate's: it can sign nodes with it.
    const nodeCa = await CertificateAuthority.load(certPem, await readFile(join(schedulerDir, 'node-ca-2.key'), 'utf8'));
    const node = new X509Certificate((await nodeCa.issue({ principal: { kind: 'node', id: 'n1' }, validityMs: 60_000 })).certPem);
    expect(trust.issuerOf(node).role).toBe('node-issuing');

    await writeFile(join(rootDir, 'garbage.csr'), 'not a CSR');
    await expect(sw('ca', 'intermediate', '--csr', join(rootDir, 'garbage.csr'), '--out', rootDir, '--name', 'garbage')).rejects.toMatchObject({
      stderr: expect.stringMatching(/cannot certify .*garbage\.csr: not a PEM-encoded PKCS#10 certificate request/),
    });

    await sw('ca', 'retire', join(rootDir, 'node-ca-2.crt'));
    expect(pemCertificates(await readFile(bundle, 'utf8'))).toHaveLength(1);
    await expect(sw('ca', 'retire', join(rootDir, 'node-ca-2.crt'))).rejects.toMatchObject({ stderr: expect.stringMatching(/is not in the trust bundle/) });
  }, 60_000);
});
