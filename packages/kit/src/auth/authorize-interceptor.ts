import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { parseSpiffeId } from '../pki/identity.js';
import type { PeerCertificate } from '../pki/peer-certificate.js';
import type { RevocationList } from '../pki/revocation-list.js';
import { accessOf, admitsAnonymous, type CallerIdentity, describeAccess, describeIdentity, isAllowed } from './access-policy.js';
import { callerKey, peerCertificateKey } from './call-context.js';

/** A call the authorizer turned away, for services that must record refusals (audit). */
export interface RefusedCall {
  /** Fully qualified service name, e.g. "shellwego.secrets.v1.SecretsService". */
  readonly service: string;
  readonly method: string;
  /** Who called; anonymous when no usable certificate was presented. */
  readonly caller: CallerIdentity;
  readonly code: Code;
  readonly reason: string;
}

export type RefusalListener = (call: RefusedCall) => void | Promise<void>;

/**
 * The one place authorization happens: maps the caller's certificate to a
 * principal and checks it against the method's access option before any
 * handler code runs. `onRefused` hears of every refusal before the caller
 * gets its error.
 */
export function authorizeInterceptor(revoked: RevocationList, onRefused?: RefusalListener): Interceptor {
  return (next) => async (req) => {
    const access = accessOf(req.method);
    const rpc = `${req.service.typeName}/${req.method.name}`;
    const refuse = async (caller: CallerIdentity, error: ConnectError): Promise<never> => {
      await onRefused?.({ service: req.service.typeName, method: req.method.name, caller, code: error.code, reason: error.rawMessage });
      throw error;
    };
    let identity: CallerIdentity;
    try {
      identity = authenticatePeer(req.contextValues.get(peerCertificateKey), revoked, admitsAnonymous(access));
    } catch (error) {
      return refuse({ kind: 'anonymous' }, ConnectError.from(error));
    }
    req.contextValues.set(callerKey, identity);
    if (!isAllowed(access, identity)) {
      return refuse(
        identity,
        new ConnectError(
          `${describeIdentity(identity)} may not call ${rpc}; allowed: ${describeAccess(access)}`,
          identity.kind === 'anonymous' ? Code.Unauthenticated : Code.PermissionDenied,
        ),
      );
    }
    return next(req);
  };
}

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
  return principal;
}

/** Service certificates stay accepted while the list is unavailable, so the platform can still reach its own services. */
function isServiceCertificate(peer: PeerCertificate): boolean {
  const principals = peer.uris.map((uri) => parseSpiffeId(uri, peer.organizationalUnits));
  return principals.length === 1 && principals[0]?.kind === 'service';
}
