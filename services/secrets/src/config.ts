import { defaultPorts, defineConfig } from '../../../lib/config/index.js';
import { databaseSettings, serverSettings } from '../../../lib/service/index.js';

/** Settings of the secrets process; env vars start with SHELLWEGO_SECRETS_. */
export const secretsConfig = defineConfig('SHELLWEGO_SECRETS', {
  ...serverSettings('secrets', defaultPorts.secrets),
  ...databaseSettings('secrets'),
});
