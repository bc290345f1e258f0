// guest-agent process entry: settings -> supervisor -> GuestService on the VM channel.

import { existsSync, readFileSync } from 'node:fs';
import { createLogger } from '@shellwego/kit/log';
import { startTracing } from '@shellwego/kit/tracing';
import { serveGuestChannel } from '@shellwego/kit/vm-channel';
import { CommanderError } from 'commander';
import { loadAgentConfig } from './agent-config.js';
import { guestServiceRoutes } from './guest-service.js';
import { WorkloadSupervisor } from './supervisor.js';

const config = (() => {
  try {
    return loadAgentConfig({
      argv: process.argv.slice(2),
      env: process.env,
      cmdline: readCmdline(),
      fileExists: existsSync,
    });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? 0 : 2); // commander has printed help or the error
    }
    process.stderr.write(`guest-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
})();

const log = createLogger({ service: 'guest-agent', destination: process.stderr, ...(config.logLevel ? { level: config.logLevel } : {}) });
if (process.pid === 1) {
  // Node cannot wait() for processes it did not spawn: as PID 1 orphans would stay zombies.
  log.warn('running as PID 1: orphaned processes will not be reaped; start the agent from an init that reaps (deploy/guest-image/init)');
}

// The host's trace continues here (traceparent on the channel); spans leave only when OTEL_* is set.
const tracing = await startTracing({ serviceName: 'guest-agent', env: process.env });

const supervisor = new WorkloadSupervisor({
  log,
  stateDir: config.stateDir,
  busybox: config.busybox,
  defaultRootfsDevice: config.defaultRootfsDevice,
  gracePeriodMs: config.gracePeriodMs,
  outputBufferBytes: config.outputBufferBytes,
});

try {
  const server = await serveGuestChannel(guestServiceRoutes(supervisor), config.channel, {
    onNotice: (message, fields) => log.info(fields ?? {}, message),
  });
  log.info(
    {
      channel: server.description,
      defaultRootfsDevice: config.defaultRootfsDevice ?? null,
      mode: config.defaultRootfsDevice === undefined ? 'process (no isolation) unless a Run names a rootfs device' : 'vm',
    },
    'guest agent serving GuestService',
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down: stopping the workload');
    supervisor
      .shutdown()
      .then(() => server.close())
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (err) {
  log.fatal({ err }, 'cannot serve GuestService on the channel');
  process.exit(1);
}

function readCmdline(): string {
  try {
    return readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return '';
  }
}
