export { type ClientTls, createMtlsClient, createMtlsTransport, type MtlsTransportOptions, mtlsSessionOptions } from './client.js';
export { addClientInterceptor, clientInterceptors } from './client-interceptors.js';
export { isConnectionFailure } from './connection-failure.js';
export { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from './connection-limits.js';
export { HealthStatus, ServingStatus } from './health-service.js';
export { implement, type RunningServer, type ServeOptions, type ServiceRegistration, serve, type TlsMaterial } from './serve.js';
export { describeExpected, type ExpectedServer, expectedService, isExpectedServer, serverIdentityCheck } from './server-identity.js';
