import { runService } from '@shellwego/kit/service';
import { registryConfig } from './config.js';
import { openRegistry } from './registry-domain.js';

await runService({
  name: 'registry',
  definition: registryConfig,
  async setup({ config, logger, metrics }) {
    const registry = await openRegistry(config, logger, registryConfig.envNames, metrics);
    return { services: [registry.service], close: () => registry.close() };
  },
});
