import type { DescMethod } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Principal } from '../pki/identity.js';
import type { PeerCertificate } from '../pki/peer-certificate.js';
import type { RevocationList } from '../pki/revocation-list.js';
import { accessOf, admitsAnonymous, type CallerIdentity, describeAccess, describeIdentity, isAllowed } from './access-policy.js';
import { authenticatePeer } from './authenticate-peer.js';

/** A call refused to a caller with a verified certificate, for services that must record such refusals (audit). */
export interface RefusedCall {
  /** Fully qualified service name, e.g. "shellwego.secrets.v1.SecretsService". */
  readonly service: string;
  readonly method: string;
  readonly caller: Principal;
  readonly code: Code;
  readonly reason: string;
}

export type RefusalListener = (call: RefusedCall) => void | Promise<void>;

export type CallDecision =
  | { readonly admitted: true; readonly caller: CallerIdentity }
  /** `caller` is anonymous when no usable certificate was presented (the code is then UNAUTHENTICATED or UNAVAILABLE). */
  | { readonly admitted: false; readonly caller: CallerIdentity; readonly error: ConnectError };

/**
 * The one authorization decision: maps the caller's certificate to a principal and checks
 * it against the method's access option (`shellwego.common.v1.access`). The server makes it
 * from the request headers, before a byte of the request body is read.
 */
export function authorizeCall(method: DescMethod, peer: PeerCertificate, revoked: RevocationList): CallDecision {
  const access = accessOf(method);
  let caller: CallerIdentity;
  try {
    caller = authenticatePeer(peer, revoked, admitsAnonymous(access));
  } catch (error) {
    return { admitted: false, caller: { kind: 'anonymous' }, error: ConnectError.from(error) };
  }
  if (isAllowed(access, caller)) return { admitted: true, caller };
  return {
    admitted: false,
    caller,
    error: new ConnectError(
      `${describeIdentity(caller)} may not call ${method.parent.typeName}/${method.name}; allowed: ${describeAccess(access)}`,
      caller.kind === 'anonymous' ? Code.Unauthenticated : Code.PermissionDenied,
    ),
  };
}
