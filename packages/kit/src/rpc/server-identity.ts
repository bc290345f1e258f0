// Which server a client accepts. Chaining to the cluster CA proves only "someone the cluster
// issued a certificate to": a node could present its own certificate for a host name it chose
// at join and pose as the secrets service. So every client also names the principal it expects
// and refuses any other URI SAN during the TLS handshake, before a request byte is written.
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate as TlsPeerCertificate } from 'node:tls';
import { type Principal, parseSpiffeId, type ServiceName, spiffeId, trustDomain } from '../pki/identity.js';
import { issuerRefusal } from '../pki/issuer-policy.js';
import { uriSubjectAltNames } from '../pki/peer-certificate.js';
import type { TrustBundle } from '../pki/trust-bundle.js';

/** The server a client expects: a named control service, one node, or (for an operator who
 *  addressed a node agent by URL alone) any node of the cluster. */
export type ExpectedServer = { readonly kind: 'service'; readonly name: ServiceName } | { readonly kind: 'node'; readonly id?: string };

export function expectedService(name: ServiceName): ExpectedServer {
  return { kind: 'service', name };
}

export function describeExpected(expected: ExpectedServer): string {
  if (expected.kind === 'service') return spiffeId(expected);
  return expected.id === undefined ? `spiffe://${trustDomain}/node/<any node>` : spiffeId({ kind: 'node', id: expected.id });
}

/** True when the principal is the server the client expects. */
export function isExpectedServer(principal: Principal | undefined, expected: ExpectedServer): boolean {
  if (principal === undefined || principal.kind !== expected.kind) return false;
  if (principal.kind === 'service') return expected.kind === 'service' && principal.name === expected.name;
  return principal.kind === 'node' && expected.kind === 'node' && (expected.id === undefined || principal.id === expected.id);
}

/**
 * A `checkServerIdentity` for tls.connect: the usual host name check, then the URI SAN must be
 * exactly the expected principal, signed by a CA of `trust` that may sign that kind (a node
 * intermediate signs nodes only). Returns the error that aborts the handshake, or undefined.
 */
export function serverIdentityCheck(expected: ExpectedServer, trust: TrustBundle): (host: string, cert: TlsPeerCertificate) => Error | undefined {
  return (host, cert) => {
    const hostError = checkServerIdentity(host, cert);
    if (hostError !== undefined) return hostError;
    const uris = uriSubjectAltNames(cert.subjectaltname ?? '');
    const principals = uris.map((uri) => parseSpiffeId(uri));
    const [principal] = principals;
    if (uris.length === 1 && principal !== undefined && isExpectedServer(principal, expected)) {
      const wrongIssuer = issuerRefusal(principal, trust.issuerOf(new X509Certificate(cert.raw)));
      return wrongIssuer === undefined ? undefined : new Error(`refusing the server at ${host}: ${wrongIssuer}`);
    }
    const presented = uris.length === 0 ? 'no shellwego identity' : uris.join(', ');
    return new Error(
      `refusing the server at ${host}: it presented ${presented}, expected ${describeExpected(expected)}; ` +
        'check the endpoint setting (another cluster member may be answering at that address)',
    );
  };
}
