export { createMtlsClient, createMtlsTransport, type MtlsTransportOptions } from './client.js';
export { HealthStatus, ServingStatus } from './health-service.js';
export { implement, serve, type RunningServer, type ServeOptions, type ServiceRegistration, type TlsMaterial } from './serve.js';
export { isConnectionFailure } from './connection-failure.js';
