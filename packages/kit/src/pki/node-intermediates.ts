import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CertificateAuthority } from './certificate-authority.js';
import { privateKeyMode, publicFileMode, writeFileAtomic } from './key-files.js';
import { pemCertificates } from './trust-bundle.js';

/** Lifetime of a node-issuing intermediate; rotate well before it ends (README, "Rotating the node intermediate"). */
export const NODE_CA_VALIDITY_DAYS = 730;

export interface NodeCaPaths {
  readonly cert: string;
  readonly key: string;
}

/**
 * Where the cluster root is kept: its key and the trust bundle (the root's certificate first,
 * then the node intermediates trusted now) that every process reads as TLS_CA.
 */
export interface RootPaths {
  readonly bundle: string;
  readonly key: string;
}

/**
 * Makes the root able to sign intermediates: a root made before them has path length 0, so it
 * is certified again with the same key and name (everything it signed still verifies) and the
 * bundle's root certificate is replaced. Returns the root to sign with.
 */
export async function rootForIntermediates(root: CertificateAuthority, paths: RootPaths): Promise<CertificateAuthority> {
  if (root.pathLength !== 0) return root;
  const again = await root.recertifiedForIntermediates();
  const others = pemCertificates(await readFile(paths.bundle, 'utf8')).filter((block) => !isSelfSigned(block));
  await writeFileAtomic(paths.bundle, joinPem([again.certPem, ...others]), publicFileMode);
  return again;
}

/**
 * Creates a node-issuing intermediate signed by `root`, writes its key (0600) and certificate
 * to `target`, and appends the certificate to the trust bundle, so every process trusts it
 * for node identities once it re-reads the bundle.
 */
export async function introduceNodeIntermediate(
  root: CertificateAuthority,
  paths: RootPaths,
  target: NodeCaPaths,
  commonName: string,
): Promise<CertificateAuthority> {
  const signer = await rootForIntermediates(root, paths);
  const intermediate = await signer.issueIntermediate({ commonName, validityDays: NODE_CA_VALIDITY_DAYS });
  await writeFileAtomic(target.key, intermediate.keyPem, privateKeyMode);
  await writeFileAtomic(target.cert, intermediate.certPem, publicFileMode);
  await appendToBundle(paths.bundle, intermediate.certPem);
  return intermediate;
}

async function appendToBundle(bundlePath: string, certPem: string): Promise<void> {
  const bundle = await readFile(bundlePath, 'utf8');
  await writeFileAtomic(bundlePath, `${bundle.trimEnd()}\n${certPem.trimEnd()}\n`, publicFileMode);
}

/**
 * Certifies an intermediate whose key was made elsewhere (its CSR), writes the certificate to
 * `certOut` and appends it to the trust bundle. Returns the certificate's PEM.
 */
export async function certifyNodeIntermediate(
  root: CertificateAuthority,
  paths: RootPaths,
  csrPem: string,
  certOut: string,
  commonName: string,
): Promise<string> {
  const signer = await rootForIntermediates(root, paths);
  const certPem = await signer.signIntermediateCsr(csrPem, { commonName, validityDays: NODE_CA_VALIDITY_DAYS });
  await writeFileAtomic(certOut, certPem, publicFileMode);
  await appendToBundle(paths.bundle, certPem);
  return certPem;
}

/**
 * Retires the intermediate whose certificate is `certPem`: removes it from the trust bundle.
 * Every process refuses what it signed once it re-reads the bundle. Returns false when it was
 * not in the bundle. The root itself cannot be retired this way.
 */
export async function retireNodeIntermediate(paths: RootPaths, certPem: string): Promise<boolean> {
  const retired = new X509Certificate(certPem);
  if (isSelfSigned(certPem)) throw new Error('that certificate is the cluster root, not a node intermediate');
  const blocks = pemCertificates(await readFile(paths.bundle, 'utf8'));
  const kept = blocks.filter((block) => !new X509Certificate(block).raw.equals(retired.raw));
  if (kept.length === blocks.length) return false;
  await writeFileAtomic(paths.bundle, joinPem(kept), publicFileMode);
  return true;
}

function isSelfSigned(pem: string): boolean {
  const cert = new X509Certificate(pem);
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function joinPem(blocks: readonly string[]): string {
  return `${blocks.map((pem) => pem.trimEnd()).join('\n')}\n`;
}
