// What other packages may use of the node agent: its configuration, whether a state directory
// already holds a node identity (the launcher decides on a join token by it), the agent itself
// for tests that run it in-process, and the TAP device name of an instance (network tests).
export { nodeAgentConfig } from './config.js';
export { hasIdentity } from './identity/identity-store.js';
export { tapDeviceFor } from './network/instance-identity.js';
export { NodeAgent } from './node-agent.js';
