// Structured logging for every service.
export { createLogger, LOG_LEVEL_ENV, REDACTED, REDACT_PATHS } from './logger.js';
export type { CreateLoggerOptions, Logger } from './logger.js';
export { toLoggable, describeBytes } from './loggable.js';
