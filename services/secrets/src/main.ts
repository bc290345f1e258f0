import { SecretsService } from '../../../gen/shellwego/secrets/v1/secrets_pb.js';
import { openDatabase } from '../../../lib/db/index.js';
import { implement } from '../../../lib/rpc/index.js';
import { runService } from '../../../lib/service/index.js';
import { secretsConfig } from './config.js';
import { migrations } from './migrations.js';

await runService({
  name: 'secrets',
  definition: secretsConfig,
  async setup({ config, logger }) {
    const database = await openDatabase({ url: config.database, schema: 'secrets', migrations, logger });
    return {
      services: [implement(SecretsService, {})],
      close: () => database.close(),
    };
  },
});
