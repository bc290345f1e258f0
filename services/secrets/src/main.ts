import { loadGrantVerifier } from '@shellwego/kit/grant';
import { runService } from '@shellwego/kit/service';
import { secretsConfig } from './config.js';
import { FileKekSource } from './kek/index.js';
import { openSecretsDomain } from './secrets-domain.js';

await runService({
  name: 'secrets',
  definition: secretsConfig,
  async setup({ config, logger, metrics }) {
    const verifier = await loadGrantVerifier(config.grantPublicKeys, secretsConfig.envNames.grantPublicKeys);
    const domain = await openSecretsDomain({
      database: config.database,
      kekSource: new FileKekSource(config.masterKeyFile),
      verifier,
      keepVersions: config.keepVersions,
      rewrapBatchSize: config.rewrapBatchSize,
      logger,
      metrics,
    });
    return {
      services: [domain.service],
      close: () => domain.close(),
      onRefused: (call) => domain.onRefused(call),
      // A resolved value must not be gzipped on its way out: zlib's buffers are copies nothing wipes.
      compression: false,
    };
  },
});
