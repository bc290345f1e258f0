import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateGrantKeyPair } from '../grant/index.js';
import { CertificateAuthority } from './certificate-authority.js';
import type { Principal } from './identity.js';
import { fileExists, privateKeyMode, publicFileMode, writeFileAtomic } from './key-files.js';
import { introduceNodeIntermediate, rootForIntermediates } from './node-intermediates.js';

/** The local processes `npm start` runs, each with its own certificate. */
export const devProcesses = ['scheduler', 'secrets', 'registry', 'node-agent'] as const;
export type DevProcess = (typeof devProcesses)[number];

export interface CertKeyPaths {
  readonly cert: string;
  readonly key: string;
}

export interface DevPki {
  /** The trust bundle every process reads (TLS_CA): the root's certificate, then the node intermediates. */
  readonly caCert: string;
  /** The root's key: for the operator's CLI only, no process is configured to read it. */
  readonly caKey: string;
  /** The node-issuing intermediate the scheduler signs node certificates with (NODE_CA_CERT, NODE_CA_KEY). */
  readonly nodeCa: CertKeyPaths;
  /** Ed25519 key the scheduler signs grants with, and its public half that secrets and registry verify with. */
  readonly grantSigningKey: string;
  readonly grantPublicKey: string;
  /** Revoked serials, one per line (created empty: services refuse node and user certificates while it is missing). */
  readonly revocationList: string;
  readonly admin: CertKeyPaths;
  /** A user with role metrics, for a Prometheus that scrapes the services' metrics listeners. */
  readonly prometheus: CertKeyPaths;
  readonly processes: Readonly<Record<DevProcess, CertKeyPaths>>;
}

export function devPkiPaths(home: string): DevPki {
  const pki = join(home, 'pki');
  const pair = (dir: string, name: string): CertKeyPaths => ({
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
  });
  return {
    caCert: join(pki, 'ca.crt'),
    caKey: join(pki, 'ca.key'),
    nodeCa: pair(pki, 'node-ca'),
    grantSigningKey: join(pki, 'grant-signing.key'),
    grantPublicKey: join(pki, 'grant-signing.pub'),
    revocationList: join(pki, 'revoked.txt'),
    admin: pair(pki, 'admin'),
    prometheus: pair(pki, 'prometheus'),
    processes: Object.fromEntries(devProcesses.map((name) => [name, pair(join(pki, 'services'), name)])) as Record<DevProcess, CertKeyPaths>,
  };
}

const serverNames = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
const leafValidityMs = 90 * 86_400_000;

/**
 * Creates, on first run, a development root CA, a node-issuing intermediate and the
 * certificates the local platform needs; later runs reuse what exists. A home made before
 * intermediates existed gets one: its root is certified again (same key) so it may sign it,
 * and the scheduler's default settings point at it. Keys are written 0600.
 */
export async function ensureDevPki(home: string): Promise<DevPki> {
  const paths = devPkiPaths(home);
  const root = { bundle: paths.caCert, key: paths.caKey };
  let ca = (await fileExists(paths.caCert))
    ? await rootForIntermediates(await CertificateAuthority.load(await readFile(paths.caCert, 'utf8'), await readFile(paths.caKey, 'utf8')), root)
    : await writeCa(paths);
  const nodeCa = (await fileExists(paths.nodeCa.cert))
    ? await CertificateAuthority.load(await readFile(paths.nodeCa.cert, 'utf8'), await readFile(paths.nodeCa.key, 'utf8'))
    : await introduceNodeIntermediate(ca, root, paths.nodeCa, 'shellwego development node CA');
  ca = await CertificateAuthority.load(await readFile(paths.caCert, 'utf8'), await readFile(paths.caKey, 'utf8'));
  await ensureLeaf(ca, paths.admin, { kind: 'user', name: 'admin', roles: ['admin'] });
  await ensureLeaf(ca, paths.prometheus, { kind: 'user', name: 'prometheus', roles: ['metrics'] });
  for (const name of devProcesses) {
    // The local node certificate comes from the intermediate, like a joined node's, chain included.
    if (name === 'node-agent') await ensureLeaf(nodeCa, paths.processes[name], { kind: 'node', id: 'local' });
    else await ensureLeaf(ca, paths.processes[name], { kind: 'service', name });
  }
  if (!(await fileExists(paths.grantSigningKey))) {
    const grantKeys = generateGrantKeyPair();
    await writeFileAtomic(paths.grantPublicKey, grantKeys.publicKeyPem, publicFileMode);
    await writeFileAtomic(paths.grantSigningKey, grantKeys.privateKeyPem, privateKeyMode);
  }
  if (!(await fileExists(paths.revocationList))) {
    await writeFileAtomic(paths.revocationList, '# revoked certificate serials, one hex serial per line\n', publicFileMode);
  }
  return paths;
}

async function writeCa(paths: DevPki): Promise<CertificateAuthority> {
  const ca = await CertificateAuthority.create({ commonName: 'shellwego development CA' });
  await writeFileAtomic(paths.caKey, ca.keyPem, privateKeyMode);
  await writeFileAtomic(paths.caCert, ca.certPem, publicFileMode);
  return ca;
}

async function ensureLeaf(ca: CertificateAuthority, target: CertKeyPaths, principal: Principal): Promise<void> {
  if ((await fileExists(target.cert)) && (await fileExists(target.key))) return;
  const issued = await ca.issue({ principal, ...serverNames, validityMs: leafValidityMs });
  const chain = ca.isRoot ? issued.certPem : `${issued.certPem.trimEnd()}\n${ca.certPem.trimEnd()}\n`;
  await writeFileAtomic(target.key, issued.keyPem, privateKeyMode);
  await writeFileAtomic(target.cert, chain, publicFileMode);
}
