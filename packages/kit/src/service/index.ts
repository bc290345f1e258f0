export { runService } from './run-service.js';
export { databaseSettings, grantVerifierSettings, serverSettings } from './service-settings.js';
export { type ServiceContext, type ServiceParts, type StartedService, type StartServiceOptions, startService } from './start-service.js';
