// Fuzzing CSR parsing: a joining node sends its CSR before it has any identity (the one
// unauthenticated RPC), so the CA must read any bytes. Each damaged or foreign CSR is either
// signed for exactly the identity the CA was told, with exactly the CSR's key, or refused with
// CsrError (mapped to INVALID_ARGUMENT by the scheduler).
import { webcrypto, X509Certificate } from 'node:crypto';
import { FUZZ_TIMEOUT_MS, FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, CsrError, createCsr } from './certificate-authority.js';
import { x509 } from './x509-provider.js';

const PRINCIPAL = { kind: 'node', id: 'fuzz-node' } as const;

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}
function pemOf(der: Uint8Array, label = 'CERTIFICATE REQUEST'): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

let ca: CertificateAuthority;
let validDer: Buffer;
/** CSRs for keys shellwego does not accept, each correctly self-signed. */
let foreignCsrs: string[];
beforeAll(async () => {
  ca = await CertificateAuthority.create();
  validDer = derOf((await createCsr('fuzz-node')).csrPem);
  const foreign = async (
    algorithm: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | webcrypto.Algorithm,
    signing: webcrypto.Algorithm | webcrypto.EcdsaParams,
  ) => {
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    return (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=foreign', keys, signingAlgorithm: signing })).toString('pem');
  };
  foreignCsrs = [
    await foreign({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }),
    await foreign(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      { name: 'RSASSA-PKCS1-v1_5' },
    ),
    await foreign({ name: 'Ed25519' }, { name: 'Ed25519' }),
  ];
});

const csrInput = (): fc.Arbitrary<string> =>
  fc.oneof(
    // The valid CSR's DER with bytes flipped, cut short or extended, as PEM.
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }).map((flips) => {
      const copy = Buffer.from(validDer);
      for (const [at, xor] of flips) copy[at % copy.length] = (copy[at % copy.length] ?? 0) ^ xor;
      return pemOf(copy);
    }),
    fc.nat({ max: 400 }).map((n) => pemOf(validDer.subarray(0, n % validDer.length))),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => pemOf(Buffer.concat([validDer, extra]))),
    // Not a CSR at all: random DER, text, other PEM labels, a certificate.
    fc.uint8Array({ maxLength: 300 }).map((b) => pemOf(b)),
    fc.string({ maxLength: 300 }),
    fc.constantFrom(pemOf(validDer, 'CERTIFICATE'), pemOf(validDer, 'PRIVATE KEY'), `${pemOf(validDer)}${pemOf(validDer)}`, ''),
    fc.constantFrom(0, 1, 2).map((i) => foreignCsrs[i] ?? ''),
  );

describe('CSR signing under fuzzing', () => {
  it('signs only a well-formed P-256 CSR, with its own key and the identity the CA was told, or throws CsrError', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const property = fc.asyncProperty(csrInput(), async (csrPem) => {
      let issued: Awaited<ReturnType<CertificateAuthority['signCsr']>>;
      try {
        issued = await ca.signCsr(csrPem, { principal: PRINCIPAL, validityMs: 3_600_000 });
      } catch (error) {
        if (!(error instanceof CsrError)) throw error;
        tally.count('refused');
        return;
      }
      tally.count('signed');
      const cert = new X509Certificate(issued.certPem);
      expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
      expect(cert.subjectAltName).toBe('URI:spiffe://shellwego/node/fuzz-node');
      const requested = new x509.Pkcs10CertificateRequest(csrPem);
      expect(Buffer.from(cert.publicKey.export({ type: 'spki', format: 'der' }))).toEqual(Buffer.from(requested.publicKey.rawData));
    });
    await runFuzz('pki/sign-csr', 1000, property, tally);
    expect(tally.get('refused')).toBeGreaterThan(500);
  });
});
