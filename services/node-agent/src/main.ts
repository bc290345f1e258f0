import { NodeAgentService } from '../../../gen/shellwego/agent/v1/agent_pb.js';
import { implement } from '../../../lib/rpc/index.js';
import { runService } from '../../../lib/service/index.js';
import { nodeAgentConfig } from './config.js';

await runService({
  name: 'node-agent',
  definition: nodeAgentConfig,
  async setup() {
    return { services: [implement(NodeAgentService, {})] };
  },
});
