import { X509Certificate } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { x509 } from './x509-provider.js';

/**
 * What an issuing CA of the cluster may sign. The root signs services, users and the node
 * intermediates (and, before intermediates existed, node certificates); a node intermediate
 * signs node identities only. Anything else that still chains to the root (a retired
 * intermediate) issues nothing this cluster accepts.
 */
export type IssuerRole = 'root' | 'node-issuing';

/** Which CA of the trust bundle signed a certificate; `unknown` when none did. */
export type CertificateIssuer =
  | { readonly role: IssuerRole; readonly subject: string }
  | { readonly role: 'unknown' /** The certificate's issuer name as it claims it. */; readonly subject: string };

/** What a re-read of the bundle file did: the node intermediates now trusted, or why the old bundle stays. */
export type TrustBundleReload = { readonly nodeIssuers: readonly string[] } | { readonly problem: string };

/** Thrown for a bundle that holds something other than roots and pathLen-0 intermediates they signed. */
export class TrustBundleError extends Error {
  override readonly name = 'TrustBundleError';
}

interface TrustedIssuer {
  readonly role: IssuerRole;
  readonly subject: string;
  readonly cert: X509Certificate;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
// Bounds the per-certificate cache; callers present a handful of certificates, an attacker many.
const CACHE_LIMIT = 10_000;

/** The PEM blocks of a certificate bundle, in order. */
export function pemCertificates(pem: string): string[] {
  return [...pem.matchAll(PEM_CERTIFICATE)].map((match) => `${match[0]}\n`);
}

/** "CN=a, OU=b", the way messages show a certificate's name. */
export function displayName(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

/**
 * The cluster's trust configuration, the PEM bundle every process reads as its CA (TLS_CA):
 * the self-signed cluster root, then each node-issuing intermediate currently trusted (CA,
 * path length 0, signed by the root). Introducing an intermediate appends it; retiring one
 * removes it, and certificates it signed are refused from then on even though they still chain
 * to the root. Which of these CAs signed a peer's certificate decides what kind of principal
 * that certificate may name (`issuerRefusal`).
 */
export class TrustBundle {
  private issuers: readonly TrustedIssuer[];
  private readonly classified = new Map<string, CertificateIssuer>();
  private reloadProblem: string | undefined;

  private constructor(
    issuers: readonly TrustedIssuer[],
    private readonly path?: string,
    private readonly onReload?: (outcome: TrustBundleReload) => void,
  ) {
    this.issuers = issuers;
  }

  /** Throws TrustBundleError naming `source` when the bundle is not roots plus intermediates they signed. */
  static parse(pem: string, source = 'the CA bundle'): TrustBundle {
    return new TrustBundle(parseIssuers(pem, source));
  }

  /**
   * Reads the bundle; with `watch`, re-reads it when it changes (a bad new version keeps the last
   * good one, see `problem`) and tells `onReload` what it now trusts or why it kept the old.
   */
  static async fromFile(path: string, options: { watch?: boolean; onReload?: (outcome: TrustBundleReload) => void } = {}): Promise<TrustBundle> {
    const bundle = new TrustBundle(parseIssuers(await readFile(path, 'utf8'), path), path, options.onReload);
    if (options.watch) watchFile(path, { interval: 2000, persistent: false }, () => void bundle.reload());
    return bundle;
  }

  /** Why the last re-read of the file was not applied, or undefined. */
  get problem(): string | undefined {
    return this.reloadProblem;
  }

  get roots(): readonly X509Certificate[] {
    return this.issuers.filter((i) => i.role === 'root').map((i) => i.cert);
  }

  get nodeIssuers(): readonly X509Certificate[] {
    return this.issuers.filter((i) => i.role === 'node-issuing').map((i) => i.cert);
  }

  /** The bundle's CA whose key signed `cert` (names checked, then the signature). */
  issuerOf(cert: X509Certificate): CertificateIssuer {
    const key = cert.fingerprint256;
    const known = this.classified.get(key);
    if (known !== undefined) return known;
    const found = this.issuers.find((issuer) => cert.checkIssued(issuer.cert) && cert.verify(issuer.cert.publicKey));
    const result: CertificateIssuer = found ? { role: found.role, subject: found.subject } : { role: 'unknown', subject: displayName(cert.issuer) };
    if (this.classified.size >= CACHE_LIMIT) this.classified.clear();
    this.classified.set(key, result);
    return result;
  }

  close(): void {
    if (this.path !== undefined) unwatchFile(this.path);
  }

  private async reload(): Promise<void> {
    if (this.path === undefined) return;
    try {
      this.issuers = parseIssuers(await readFile(this.path, 'utf8'), this.path);
      this.classified.clear();
      this.reloadProblem = undefined;
      this.onReload?.({ nodeIssuers: this.issuers.filter((i) => i.role === 'node-issuing').map((i) => i.subject) });
    } catch (error) {
      this.reloadProblem = `${this.path} could not be re-read, the previous trust bundle stays in force: ${error instanceof Error ? error.message : String(error)}`;
      this.onReload?.({ problem: this.reloadProblem });
    }
  }
}

function parseIssuers(pem: string, source: string): TrustedIssuer[] {
  const blocks = pemCertificates(pem);
  if (blocks.length === 0) throw new TrustBundleError(`${source} holds no PEM certificate`);
  const certs = blocks.map((block) => new X509Certificate(block));
  const roots = certs.filter((cert) => cert.ca && cert.checkIssued(cert) && cert.verify(cert.publicKey));
  if (roots.length === 0) throw new TrustBundleError(`${source} holds no self-signed root CA certificate; it must start with the cluster CA`);
  return certs.map((cert, index) => {
    const subject = displayName(cert.subject);
    if (roots.includes(cert)) return { role: 'root', subject, cert };
    const problem = intermediateProblem(blocks[index] as string, cert, roots);
    if (problem !== undefined) throw new TrustBundleError(`${source}: certificate ${index + 1} (${subject}) ${problem}`);
    return { role: 'node-issuing', subject, cert };
  });
}

/** Why a bundle entry that is not a root cannot be a node-issuing intermediate, or undefined. */
export function intermediateProblem(pem: string, cert: X509Certificate, roots: readonly X509Certificate[]): string | undefined {
  const parsed = new x509.X509Certificate(pem);
  const constraints = parsed.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) return 'is not a CA certificate';
  if (constraints.pathLength !== 0) return 'is not limited to path length 0: a node-issuing CA must not be able to create further CAs';
  const usages = parsed.getExtension(x509.KeyUsagesExtension);
  if (usages === null || (usages.usages & x509.KeyUsageFlags.keyCertSign) === 0) return 'lacks the keyCertSign key usage';
  if (!roots.some((root) => cert.checkIssued(root) && cert.verify(root.publicKey))) return "is not signed by the bundle's root CA";
  return undefined;
}
