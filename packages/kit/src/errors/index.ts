// Errors the processes share: errno checks, database reachability, ConnectError helpers.
export { failedPrecondition, internalError, invalidArgument, notFound, permissionDenied, resourceExhausted, unavailable } from './connect-errors.js';
export { databaseUnreachable } from './database-unreachable.js';
export { errnoCode, failedSyscall, isErrno } from './errno.js';
export { mapHandlerErrors } from './map-handler-errors.js';
