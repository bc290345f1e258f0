import { RegistryService } from '../../../gen/shellwego/registry/v1/registry_pb.js';
import { openDatabase } from '../../../lib/db/index.js';
import { implement } from '../../../lib/rpc/index.js';
import { runService } from '../../../lib/service/index.js';
import { registryConfig } from './config.js';
import { migrations } from './migrations.js';

await runService({
  name: 'registry',
  definition: registryConfig,
  async setup({ config, logger }) {
    const database = await openDatabase({ url: config.database, schema: 'registry', migrations, logger });
    return {
      services: [implement(RegistryService, {})],
      close: () => database.close(),
    };
  },
});
