import { defaultPorts, defineConfig } from '../../../lib/config/index.js';
import { databaseSettings, serverSettings } from '../../../lib/service/index.js';

/** Settings of the registry process; env vars start with SHELLWEGO_REGISTRY_. */
export const registryConfig = defineConfig('SHELLWEGO_REGISTRY', {
  ...serverSettings('registry', defaultPorts.registry),
  ...databaseSettings('registry'),
});
