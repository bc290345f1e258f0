import { type Principal, spiffeId } from './identity.js';
import type { CertificateIssuer } from './trust-bundle.js';

/**
 * Why a certificate naming `principal` cannot be accepted from `issuer`, or undefined when it
 * can. X.509 name constraints cannot say this (a URI constraint limits only the host part,
 * `shellwego`, not the path that names the kind), so every peer check applies it: a node
 * intermediate, held by the scheduler to sign joining nodes, signs node identities only; users
 * and services are signed by the root alone. The root may also sign nodes: it can sign anything
 * anyway, and node certificates issued before the intermediates existed stay valid until they
 * expire or are renewed.
 */
export function issuerRefusal(principal: Principal, issuer: CertificateIssuer): string | undefined {
  switch (issuer.role) {
    case 'root':
      return undefined;
    case 'node-issuing':
      if (principal.kind === 'node') return undefined;
      return (
        `the certificate for ${spiffeId(principal)} was signed by the node-issuing CA "${issuer.subject}", ` +
        `which may sign only spiffe://shellwego/node/<id> identities; ${principal.kind} certificates come from the cluster root CA`
      );
    case 'unknown':
      return (
        `the certificate for ${spiffeId(principal)} was signed by "${issuer.subject}", which is not a CA of this cluster's trust bundle ` +
        '(a retired node-issuing CA?); it may sign nothing: renew or re-issue the certificate'
      );
  }
}
