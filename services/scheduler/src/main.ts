import { AppService } from '../../../gen/shellwego/scheduler/v1/apps_pb.js';
import { NodeService } from '../../../gen/shellwego/scheduler/v1/nodes_pb.js';
import { openDatabase } from '../../../lib/db/index.js';
import { implement } from '../../../lib/rpc/index.js';
import { runService } from '../../../lib/service/index.js';
import { schedulerConfig } from './config.js';
import { migrations } from './migrations.js';

await runService({
  name: 'scheduler',
  definition: schedulerConfig,
  async setup({ config, logger }) {
    const database = await openDatabase({ url: config.database, schema: 'scheduler', migrations, logger });
    return {
      services: [implement(AppService, {}), implement(NodeService, {})],
      close: () => database.close(),
    };
  },
});
