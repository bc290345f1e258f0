import { Code, ConnectError, createContextKey, type HandlerContext } from '@connectrpc/connect';
import type { Principal } from '../pki/identity.js';
import { noPeerCertificate, type PeerCertificate } from '../pki/peer-certificate.js';
import type { CallerIdentity } from './access-policy.js';

/** Set by the server from the TLS socket, for handlers that check which certificate was presented (renewal). */
export const peerCertificateKey = createContextKey<PeerCertificate>(noPeerCertificate, {
  description: 'TLS client certificate of the caller',
});

/** The network address of the caller ("203.0.113.7", "::1"), for handlers that account anonymous callers by source. */
export const peerAddressKey = createContextKey<string>('', { description: 'remote address of the caller' });

/** Set by the server from its authorization decision, for handlers. */
export const callerKey = createContextKey<CallerIdentity>(
  { kind: 'anonymous' },
  {
    description: 'authenticated caller',
  },
);

/** The caller of an RPC, as established by the authorizer. */
export function callerOf(context: HandlerContext): CallerIdentity {
  return context.values.get(callerKey);
}

/** The authenticated principal; for handlers of RPCs that never admit anonymous callers. */
export function principalOf(context: HandlerContext): Principal {
  const caller = callerOf(context);
  if (caller.kind === 'anonymous') {
    throw new ConnectError('this call requires a client certificate', Code.Unauthenticated);
  }
  return caller;
}
