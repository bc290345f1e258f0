import { defaultPorts, defineConfig } from '../../../lib/config/index.js';
import { databaseSettings, serverSettings } from '../../../lib/service/index.js';

/** Settings of the scheduler process; env vars start with SHELLWEGO_SCHEDULER_. */
export const schedulerConfig = defineConfig('SHELLWEGO_SCHEDULER', {
  ...serverSettings('scheduler', defaultPorts.scheduler),
  ...databaseSettings('scheduler'),
});
