export { accessOf, admitsAnonymous, anyAuthenticated, type CallerIdentity, describeAccess, describeIdentity, isAllowed } from './access-policy.js';
export { authenticatePeer } from './authenticate-peer.js';
export { authorizeCall, type CallDecision, type RefusalListener, type RefusedCall } from './authorize-call.js';
export { callerKey, callerOf, peerAddressKey, peerCertificateKey, principalOf } from './call-context.js';
