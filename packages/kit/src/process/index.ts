// Processes: starting a service and waiting for it to serve, finding executables, and telling
// whether a pid is still the process it was (pids are reused).
export { findExecutable } from './find-executable.js';
export { checkIdentity, descendantsOf, type Identity, isRunning, readCmdline } from './proc-identity.js';
export { type ServiceProcess, startServiceProcess } from './service-process.js';
export { waitServing } from './wait-serving.js';
