// Picks and prepares the VM driver: the configured (or, with "auto", the strongest working) one,
// with the guest agent bundle and, for real VMs, the guest image. Under "auto", a host whose
// guest image cannot be built falls back to the process driver and says so.
import type { Logger } from '@shellwego/kit/log';
import { createVmDriver, vmDriverConfigFrom, type GuestImage, type VmDriver, type VmDriverSettingValues } from './drivers/index.js';
import { guestAgentBundle, resolveGuestImage } from './guest-image.js';

export interface PreparedDriver {
  readonly driver: VmDriver;
  readonly reason: string;
  readonly guestImage: GuestImage | undefined;
}

export async function prepareVmDriver(
  settings: VmDriverSettingValues & { guestImageDir: string | undefined },
  log: Logger,
  signal: AbortSignal,
): Promise<PreparedDriver> {
  // A shutdown must not wait for a build (Ctrl-C may have killed the builder it waits for).
  const bundle = await untilAborted(guestAgentBundle(settings.guestAgentBundle, log), signal);
  const values = { ...settings, guestAgentBundle: bundle };
  const chosen = createVmDriver(vmDriverConfigFrom(values, log));
  if (chosen.driver.kind === 'process') return { ...chosen, guestImage: undefined };
  try {
    return { ...chosen, guestImage: await untilAborted(resolveGuestImage(settings.guestImageDir, bundle, log, signal), signal) };
  } catch (error) {
    if (settings.vmDriver !== 'auto' || signal.aborted) throw error;
    const why = error instanceof Error ? error.message : String(error);
    log.warn({ driver: chosen.driver.kind, err: why }, 'the guest image for real VMs is not available; falling back to the process driver');
    const fallback = createVmDriver(vmDriverConfigFrom({ ...values, vmDriver: 'process' }, log));
    return {
      driver: fallback.driver,
      reason: `auto: ${chosen.driver.kind} is available but its guest image is not (${why}): falling back to the development-only process driver, workloads run on the host WITHOUT isolation`,
      guestImage: undefined,
    };
  }
}

/** The promise's outcome, or the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
