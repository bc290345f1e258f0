import { createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { type Principal, spiffeId, trustDomain } from './identity.js';
import { pemCertificates } from './trust-bundle.js';
import { type CryptoKey, type EcKeyAlgorithm, ecdsaP256, type KeyUsage, subtle, x509 } from './x509-provider.js';

export interface IssuedCertificate {
  readonly certPem: string;
  readonly serial: string;
  readonly notAfter: Date;
}

export interface IssuedKeyPair extends IssuedCertificate {
  readonly keyPem: string;
}

export interface LeafOptions {
  readonly principal: Principal;
  /** DNS names the certificate also serves as (server certificates). */
  readonly dnsNames?: readonly string[];
  /** IP addresses the certificate also serves as (server certificates). */
  readonly ipAddresses?: readonly string[];
  readonly validityMs: number;
}

/** Thrown for a CSR that cannot be signed; the message says why. */
export class CsrError extends Error {
  override readonly name = 'CsrError';
}

// Back-dating absorbs small clock differences between hosts.
const clockSkewMs = 5 * 60_000;

export class CertificateAuthority {
  private constructor(
    readonly certPem: string,
    readonly keyPem: string,
    private readonly cert: x509.X509Certificate,
    private readonly key: CryptoKey,
  ) {}

  static async create(options: { commonName?: string; validityDays?: number } = {}): Promise<CertificateAuthority> {
    const keys = await subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
    return CertificateAuthority.selfSigned(keys, new x509.Name([{ CN: [options.commonName ?? `${trustDomain} cluster CA`] }]), options.validityDays ?? 3650);
  }

  /**
   * Loads a CA from its key and a PEM holding its certificate, alone or in a bundle (the trust
   * bundle holds the root and the node intermediates): the certificate is the one whose public
   * key is the key's.
   */
  static async load(certPem: string, keyPem: string): Promise<CertificateAuthority> {
    const publicDer = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    const own = pemCertificates(certPem).find((block) => new X509Certificate(block).publicKey.export({ type: 'spki', format: 'der' }).equals(publicDer));
    if (own === undefined) throw new Error("none of the certificates given is the CA key's certificate");
    const key = await importKeyPem(keyPem, ['sign']);
    return new CertificateAuthority(own, keyPem, new x509.X509Certificate(own), key);
  }

  /** True for a self-signed CA: the cluster root. */
  get isRoot(): boolean {
    const cert = new X509Certificate(this.certPem);
    return cert.checkIssued(cert) && cert.verify(cert.publicKey);
  }

  /**
   * The root's path length: 0 forbids intermediates (roots made before node intermediates
   * existed), undefined means no limit.
   */
  get pathLength(): number | undefined {
    return this.cert.getExtension(x509.BasicConstraintsExtension)?.pathLength;
  }

  /**
   * The same root (same key, same name, so everything it signed still verifies) certified
   * again with path length 1, so it can sign node intermediates. Roots made before them
   * had path length 0.
   */
  async recertifiedForIntermediates(): Promise<CertificateAuthority> {
    if (!this.isRoot) throw new Error('only the self-signed cluster root can be certified again');
    const publicKey = await new x509.X509Certificate(this.certPem).publicKey.export(ecdsaP256, ['verify']);
    const days = Math.max(1, Math.round((this.cert.notAfter.getTime() - Date.now()) / 86_400_000));
    const again = await CertificateAuthority.selfSigned({ publicKey, privateKey: this.key }, this.cert.subjectName, days);
    return new CertificateAuthority(again.certPem, this.keyPem, again.cert, this.key);
  }

  /**
   * A node-issuing intermediate signed by this root: CA with path length 0 (it can sign
   * leaves only) and key usage keyCertSign and cRLSign. The authorizer accepts what it signs
   * for node identities only.
   */
  async issueIntermediate(options: { commonName: string; validityDays: number }): Promise<CertificateAuthority> {
    const keys = await subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
    const cert = await this.certifyIntermediate(keys.publicKey, options);
    return new CertificateAuthority(cert.toString('pem'), await exportKeyPem(keys.privateKey), cert, keys.privateKey);
  }

  /**
   * The same for a key made elsewhere (on the scheduler's host), from its CSR: the intermediate's
   * key never reaches the root's machine. Only the key comes from the CSR. Returns the PEM
   * certificate.
   */
  async signIntermediateCsr(csrPem: string, options: { commonName: string; validityDays: number }): Promise<string> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      throw new CsrError('not a PEM-encoded PKCS#10 certificate request');
    }
    const publicKey = await p256KeyOf(csr);
    if (!(await csr.verify().catch(() => false))) throw new CsrError('the CSR signature does not verify: it was not signed by the key it carries');
    return (await this.certifyIntermediate(publicKey, options)).toString('pem');
  }

  private async certifyIntermediate(publicKey: CryptoKey, options: { commonName: string; validityDays: number }): Promise<x509.X509Certificate> {
    if (!this.isRoot) throw new Error('node intermediates are signed by the cluster root');
    if (this.pathLength === 0)
      throw new Error('this root has path length 0 and cannot sign intermediates; certify it again first (recertifiedForIntermediates)');
    const now = Date.now();
    const notAfter = Math.min(now + options.validityDays * 86_400_000, this.cert.notAfter.getTime());
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: new x509.Name([{ CN: [options.commonName] }]),
      issuer: this.cert.subjectName,
      notBefore: new Date(now - clockSkewMs),
      notAfter: new Date(notAfter),
      publicKey,
      signingKey: this.key,
      signingAlgorithm: ecdsaP256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
  }

  private static async selfSigned(keys: { publicKey: CryptoKey; privateKey: CryptoKey }, name: x509.Name, validityDays: number): Promise<CertificateAuthority> {
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name,
      notBefore: new Date(now - clockSkewMs),
      notAfter: new Date(now + validityDays * 86_400_000),
      keys,
      signingAlgorithm: ecdsaP256,
      extensions: [
        // Path length 1: the root signs node intermediates, which sign leaves only.
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new CertificateAuthority(cert.toString('pem'), await exportKeyPem(keys.privateKey), cert, keys.privateKey);
  }

  /** Issues a certificate with a fresh key pair generated here (services, users, the dev launcher). */
  async issue(options: LeafOptions): Promise<IssuedKeyPair> {
    const keys = await subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
    const issued = await this.sign(keys.publicKey, options);
    return { ...issued, keyPem: await exportKeyPem(keys.privateKey) };
  }

  /**
   * Signs a node's CSR. Only the key comes from the CSR: the identity and
   * every extension are decided here, whatever the CSR asks for.
   */
  async signCsr(csrPem: string, options: LeafOptions): Promise<IssuedCertificate> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      throw new CsrError('csr_pem is not a PEM-encoded PKCS#10 certificate request');
    }
    const publicKey = await p256KeyOf(csr);
    if (!(await csr.verify().catch(() => false))) {
      throw new CsrError('the CSR signature does not verify: it was not signed by the key it carries');
    }
    return this.sign(publicKey, options);
  }

  private async sign(publicKey: CryptoKey, options: LeafOptions): Promise<IssuedCertificate> {
    const now = Date.now();
    const notAfter = new Date(now + options.validityMs);
    const names: x509.JsonGeneralName[] = [{ type: 'url', value: spiffeId(options.principal) }];
    for (const dns of options.dnsNames ?? []) names.push({ type: 'dns', value: dns });
    for (const ip of options.ipAddresses ?? []) {
      if (isIP(ip) === 0) throw new CsrError(`${ip} is not an IP address`);
      names.push({ type: 'ip', value: ip });
    }
    const serial = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: subjectOf(options.principal),
      issuer: this.cert.subjectName,
      notBefore: new Date(now - clockSkewMs),
      notAfter,
      publicKey,
      signingKey: this.key,
      signingAlgorithm: ecdsaP256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(extendedKeyUsageOf(options.principal), true),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return { certPem: cert.toString('pem'), serial, notAfter };
  }
}

/** The CSR's key as a P-256 verification key, or CsrError (reading any part of it can throw). */
async function p256KeyOf(csr: x509.Pkcs10CertificateRequest): Promise<CryptoKey> {
  let algorithm: EcKeyAlgorithm;
  try {
    algorithm = csr.publicKey.algorithm as EcKeyAlgorithm;
  } catch {
    throw new CsrError("the CSR's public key has an unreadable algorithm; shellwego requires ECDSA P-256");
  }
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new CsrError(`the CSR's key is ${algorithm.name}${algorithm.namedCurve ? ` ${algorithm.namedCurve}` : ''}; shellwego requires ECDSA P-256`);
  }
  try {
    // Importing checks that the point is on the curve; WebCrypto throws a DataError otherwise.
    return await csr.publicKey.export(ecdsaP256, ['verify']);
  } catch {
    throw new CsrError("the CSR's public key is not a valid ECDSA P-256 key");
  }
}

/** Creates a P-256 key and a CSR for it; the key never leaves the caller. */
export async function createCsr(commonName: string): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: new x509.Name([{ CN: [commonName] }]),
    keys,
    signingAlgorithm: ecdsaP256,
  });
  return { csrPem: csr.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * Users only ever call services, so their certificates are client certificates: TLS refuses one
 * presented by a server during the handshake. Services and node agents both serve and call.
 */
function extendedKeyUsageOf(principal: Principal): string[] {
  if (principal.kind === 'user') return [x509.ExtendedKeyUsage.clientAuth];
  return [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
}

function subjectOf(principal: Principal): x509.Name {
  const cn = principal.kind === 'node' ? principal.id : principal.name;
  // Users carry their roles as organizational units; the authorizer reads them.
  const roles = principal.kind === 'user' ? principal.roles : [];
  return new x509.Name([{ CN: [cn] }, ...roles.map((role) => ({ OU: [role] }))]);
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  // A positive INTEGER: clear the sign bit.
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(pem: string, usages: KeyUsage[]): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block found in the private key');
  return subtle.importKey('pkcs8', der, ecdsaP256, true, usages);
}
