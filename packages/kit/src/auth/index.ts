export { accessOf, anyAuthenticated, type CallerIdentity, describeAccess, describeIdentity, isAllowed } from './access-policy.js';
export { authenticatePeer, authorizeInterceptor, type RefusalListener, type RefusedCall } from './authorize-interceptor.js';
export { callerKey, callerOf, peerCertificateKey, principalOf } from './call-context.js';
