import type { Setting } from '../config/index.js';
import { ConfigError } from '../config/index.js';
import type { serverSettings } from './service-settings.js';
import { type StartServiceOptions, startService } from './start-service.js';

/**
 * The process entry of every service: starts it, and on SIGTERM or SIGINT
 * drains in-flight calls and exits 0. A start-up failure prints what to fix
 * and exits 1 (2 for bad configuration).
 */
export async function runService<S extends ReturnType<typeof serverSettings> & Record<string, Setting<unknown>>>(
  options: StartServiceOptions<S>,
): Promise<void> {
  let started;
  try {
    started = await startService(options);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${options.name}: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${options.name}: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  const service = started;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    service.logger.info({ signal }, 'shutting down');
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        service.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a second signal (Ctrl-C twice, or execa re-raising one
  // for its children) must not fall through to Node's default and kill the
  // process mid-drain; stop() runs only once anyway.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
