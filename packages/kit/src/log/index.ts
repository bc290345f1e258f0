// Structured logging for every service.

export { describeBytes, toLoggable } from './loggable.js';
export type { CreateLoggerOptions, Logger } from './logger.js';
export { createLogger, LOG_LEVEL_ENV, REDACT_PATHS, REDACTED } from './logger.js';
