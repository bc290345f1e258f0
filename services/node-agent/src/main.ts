// node-agent process entry: serving certificate -> serve NodeAgentService -> agent (driver,
// re-adoption) -> join and open the scheduler Session, in the background.
import { ConfigError } from '@shellwego/kit/config';
import { createLogger } from '@shellwego/kit/log';
import { runService } from '@shellwego/kit/service';
import { nodeAgentConfig } from './config.js';
import { NodeAgent } from './node-agent.js';
import { servingEnvironment } from './serving-tls.js';

const logger = createLogger({ service: 'node-agent' });

let env: NodeJS.ProcessEnv;
try {
  env = await servingEnvironment(process.env, logger);
} catch (error) {
  process.stderr.write(`node-agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}

await runService({
  name: 'node-agent',
  definition: nodeAgentConfig,
  env,
  logger,
  async setup({ config, logger: log, shuttingDown, metrics }) {
    // Serve at once: preparing the driver (a guest image build on a fresh host) may take a while.
    const ready = NodeAgent.create(config, log, shuttingDown, metrics);
    ready.then(
      (agent) => {
        if (!shuttingDown.aborted) void agent.joinAndConnect();
      },
      (error: unknown) => {
        if (shuttingDown.aborted) return;
        log.fatal({ err: error instanceof Error ? error.message : String(error) }, 'the node agent cannot start');
        process.exit(1);
      },
    );
    return {
      services: NodeAgent.services(ready, shuttingDown),
      close: async () => (await ready.catch(() => undefined))?.close(),
    };
  },
});
