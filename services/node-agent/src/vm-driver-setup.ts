// Picks and prepares the VM driver: the configured (or, with "auto", the strongest working) one,
// with, for real VMs, the guest image. Under "auto", a host without a usable guest image falls
// back to the process driver and says so.
import type { Logger } from '@shellwego/kit/log';
import { createVmDriver, type GuestImage, type VmDriver, type VmDriverSettingValues, vmDriverConfigFrom } from './drivers/index.js';
import { configuredGuestImage } from './guest-image.js';

export interface PreparedDriver {
  readonly driver: VmDriver;
  readonly reason: string;
  readonly guestImage: GuestImage | undefined;
}

export async function prepareVmDriver(settings: VmDriverSettingValues & { guestImageDir: string | undefined }, log: Logger): Promise<PreparedDriver> {
  const chosen = createVmDriver(vmDriverConfigFrom(settings, log));
  if (chosen.driver.kind === 'process') return { ...chosen, guestImage: undefined };
  try {
    return { ...chosen, guestImage: await configuredGuestImage(settings.guestImageDir) };
  } catch (error) {
    if (settings.vmDriver !== 'auto') throw error;
    const why = error instanceof Error ? error.message : String(error);
    log.warn({ driver: chosen.driver.kind, err: why }, 'the guest image for real VMs is not available; falling back to the process driver');
    const fallback = createVmDriver(vmDriverConfigFrom({ ...settings, vmDriver: 'process' }, log));
    return {
      driver: fallback.driver,
      reason: `auto: ${chosen.driver.kind} is available but its guest image is not (${why}): falling back to the development-only process driver, workloads run on the host WITHOUT isolation`,
      guestImage: undefined,
    };
  }
}
