import { defaultPorts, defineConfig, integer, path } from '@shellwego/kit/config';
import { databaseSettings, grantVerifierSettings, serverSettings } from '@shellwego/kit/service';

/** Settings of the secrets process; env vars start with SHELLWEGO_SECRETS_. */
export const secretsConfig = defineConfig('SHELLWEGO_SECRETS', {
  ...serverSettings('secrets', defaultPorts.secrets),
  ...databaseSettings('secrets'),
  masterKeyFile: path({
    default: '$SHELLWEGO_HOME/secrets/master.key',
    description: 'the 32-byte master key file (mode 0600, directory 0700); rotated versions sit beside it as master-k<N>.key',
  }),
  ...grantVerifierSettings(),
  keepVersions: integer({ default: 10, min: 1, max: 1000, description: 'versions kept per secret; older ones are deleted on write' }),
  rewrapBatchSize: integer({ default: 200, min: 1, max: 10_000, description: 'secret versions re-wrapped per transaction during a master key rotation' }),
});
