import { defaultPorts, defineConfig } from '../../../lib/config/index.js';
import { serverSettings } from '../../../lib/service/index.js';

/** Settings of the node agent; env vars start with SHELLWEGO_NODE_AGENT_. */
export const nodeAgentConfig = defineConfig('SHELLWEGO_NODE_AGENT', {
  ...serverSettings('node-agent', defaultPorts.nodeAgent),
});
