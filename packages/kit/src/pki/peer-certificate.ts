import type { TLSSocket } from 'node:tls';
import type { CertificateIssuer, TrustBundle } from './trust-bundle.js';

/** What the TLS layer established about the caller's client certificate. */
export interface PeerCertificate {
  /** False when the caller sent no certificate. */
  readonly present: boolean;
  /** True when the certificate chains to the cluster CA and is within its validity period. */
  readonly authorized: boolean;
  /** OpenSSL's reason when not authorized (e.g. CERT_HAS_EXPIRED). */
  readonly authorizationError?: string;
  /** The URI SANs. */
  readonly uris: readonly string[];
  /** The subject's organizational units (user roles). */
  readonly organizationalUnits: readonly string[];
  /** Serial number, lowercase hex. */
  readonly serial: string;
  /** Which CA of the trust bundle signed it: decides which kind of principal it may name. */
  readonly issuer: CertificateIssuer;
}

export const noPeerCertificate: PeerCertificate = {
  present: false,
  authorized: false,
  uris: [],
  organizationalUnits: [],
  serial: '',
  issuer: { role: 'unknown', subject: '' },
};

export function peerCertificateOf(socket: TLSSocket, trust: TrustBundle): PeerCertificate {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return noPeerCertificate;
  const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined;
  return {
    present: true,
    authorized: socket.authorized,
    ...(authorizationError ? { authorizationError } : {}),
    uris: uriSubjectAltNames(cert.subjectAltName ?? ''),
    organizationalUnits: cert.subject
      .split('\n')
      .filter((line) => line.startsWith('OU='))
      .map((line) => line.slice(3)),
    serial: cert.serialNumber.toLowerCase(),
    issuer: trust.issuerOf(cert),
  };
}

/** The URI entries of a subject alternative name as Node renders it ("URI:a, DNS:b"). */
export function uriSubjectAltNames(subjectAltName: string): string[] {
  return splitSubjectAltName(subjectAltName)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

// Node renders SANs as "URI:a, DNS:b"; values may be quoted when they contain
// commas, which shellwego's SPIFFE ids never do.
function splitSubjectAltName(value: string): string[] {
  return value
    .split(/,\s*/)
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}
