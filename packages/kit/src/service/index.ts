export { runService } from './run-service.js';
export { databaseSettings, grantVerifierSettings, serverSettings } from './service-settings.js';
export { startService, type ServiceContext, type ServiceParts, type StartServiceOptions, type StartedService } from './start-service.js';
