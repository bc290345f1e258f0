import { Code, ConnectError } from '@connectrpc/connect';
import { parseSpiffeId } from '../pki/identity.js';
import { issuerRefusal } from '../pki/issuer-policy.js';
import type { PeerCertificate } from '../pki/peer-certificate.js';
import type { RevocationList } from '../pki/revocation-list.js';
import type { CallerIdentity } from './access-policy.js';

/**
 * The caller a TLS peer proves: its one shellwego principal, or anonymous when it sent no
 * certificate and `anonymousAllowed`. Throws an UNAUTHENTICATED ConnectError saying why not.
 */
export function authenticatePeer(peer: PeerCertificate, revoked: RevocationList, anonymousAllowed: boolean): CallerIdentity {
  if (!peer.present) {
    if (anonymousAllowed) return { kind: 'anonymous' };
    throw new ConnectError(
      'a client certificate is required: connect with a certificate issued by the cluster CA (see `shellwego cert issue`)',
      Code.Unauthenticated,
    );
  }
  if (!peer.authorized) {
    throw new ConnectError(
      `client certificate rejected (${peer.authorizationError ?? 'not verified'}): use a current certificate issued by this cluster's CA`,
      Code.Unauthenticated,
    );
  }
  const listProblem = revoked.unavailable;
  if (listProblem !== undefined && !isServiceCertificate(peer)) {
    throw new ConnectError(
      `cannot check client certificates against revocations: ${listProblem}; node and user certificates are refused until it can be read`,
      Code.Unavailable,
    );
  }
  if (revoked.has(peer.serial)) {
    throw new ConnectError(`client certificate serial ${peer.serial} has been revoked`, Code.Unauthenticated);
  }
  const principals = peer.uris.map((uri) => parseSpiffeId(uri, peer.organizationalUnits)).filter((p) => p !== undefined);
  const [principal] = principals;
  if (!principal || principals.length > 1) {
    throw new ConnectError('client certificate must carry exactly one spiffe://shellwego/{user,node,service}/<name> URI SAN', Code.Unauthenticated);
  }
  const wrongIssuer = issuerRefusal(principal, peer.issuer);
  if (wrongIssuer !== undefined) throw new ConnectError(`client certificate refused: ${wrongIssuer}`, Code.Unauthenticated);
  return principal;
}

/** Service certificates stay accepted while the list is unavailable, so the platform can still reach its own services. */
function isServiceCertificate(peer: PeerCertificate): boolean {
  const principals = peer.uris.map((uri) => parseSpiffeId(uri, peer.organizationalUnits));
  return principals.length === 1 && principals[0]?.kind === 'service';
}
