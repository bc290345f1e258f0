// Picks and prepares the VM driver: the configured (or, with "auto", the strongest working) one,
// with, for real VMs, the guest image and the cgroups its VMMs run in. Under "auto", a host
// without a usable guest image falls back to the process driver and says so.
import { createHash } from 'node:crypto';
import type { Logger } from '@shellwego/kit/log';
import { createVmDriver, type GuestImage, type VmDriver, type VmDriverSettingValues, vmDriverConfigFrom } from './drivers/index.js';
import { detectCgroups, VmmCgroups } from './drivers/vmm-cgroup.js';
import { configuredGuestImage } from './guest-image.js';

export interface PreparedDriver {
  readonly driver: VmDriver;
  readonly reason: string;
  readonly guestImage: GuestImage | undefined;
}

type DriverSetupSettings = VmDriverSettingValues & { guestImageDir: string | undefined; stateDir: string };

export async function prepareVmDriver(settings: DriverSetupSettings, log: Logger): Promise<PreparedDriver> {
  const cgroups = settings.vmDriver === 'process' ? undefined : await vmCgroups(settings, log);
  const chosen = createVmDriver(vmDriverConfigFrom(settings, log, cgroups));
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

/** The VMMs' cgroups as VM_CGROUPS asks: found and proven writable, or why not (fatal when required). */
async function vmCgroups(settings: DriverSetupSettings, log: Logger): Promise<VmmCgroups | undefined> {
  if (settings.vmCgroups === 'off') {
    log.warn('VM_CGROUPS=off: VMMs run without CPU and memory limits; one VM can take the node from the others');
    return undefined;
  }
  const parent = settings.vmCgroupParent ?? `shellwego-${createHash('sha256').update(settings.stateDir).digest('hex').slice(0, 12)}`;
  const detected = detectCgroups(parent);
  let problem: string;
  if (detected.ok) {
    const cgroups = new VmmCgroups(detected.layout);
    try {
      await cgroups.check();
      log.info({ cgroups: detected.layout }, `each VMM runs in its own cgroup (v${detected.layout.version})`);
      return cgroups;
    } catch (error) {
      problem = `cannot create cgroups there: ${(error as Error).message}`;
    }
  } else {
    problem = detected.why;
  }
  if (settings.vmCgroups === 'required') throw new Error(`VM_CGROUPS=required, but ${problem}`);
  log.warn({ reason: problem }, 'VMMs run without cgroups (no CPU or memory limits): one VM can take the node from the others');
  return undefined;
}
