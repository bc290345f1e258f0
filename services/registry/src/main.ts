import { runService } from '@shellwego/kit/service';
import { registryConfig } from './config.js';
import { openRegistry } from './registry-domain.js';

await runService({
  name: 'registry',
  definition: registryConfig,
  async setup({ config, logger }) {
    const registry = await openRegistry(config, logger, registryConfig.envNames);
    return { services: [registry.service], close: () => registry.close() };
  },
});
