// The VM driver's settings, to spread into the node agent's config definition
// (env SHELLWEGO_NODE_AGENT_VM_DRIVER, ..._QEMU_ACCEL, ...), and their mapping to driver config.

import { oneOf, optional, path, string } from '@shellwego/kit/config';
import type { Logger } from '@shellwego/kit/log';
import type { VmDriverConfig } from './select-driver.js';

export function vmDriverSettings() {
  return {
    vmDriver: oneOf(['auto', 'firecracker', 'qemu', 'process'], {
      default: 'auto',
      description: 'VM driver: auto picks firecracker, then qemu, then process (development only, no isolation)',
    }),
    firecrackerBinary: string({ default: 'firecracker', description: 'the firecracker binary (a name is looked up on PATH)' }),
    qemuBinary: string({ default: 'qemu-system-x86_64', description: 'the QEMU binary (a name is looked up on PATH)' }),
    qemuAccel: oneOf(['auto', 'kvm', 'tcg'], {
      default: 'auto',
      description: 'QEMU accelerator: auto tries KVM on the first boot and falls back to TCG when it does not work',
    }),
    guestAgentBundle: optional(
      path({
        description:
          'the bundled guest agent (npm start builds it: services/guest-agent/dist/guest-agent.mjs); the process driver runs it, the guest image embeds it',
      }),
    ),
  };
}

export interface VmDriverSettingValues {
  readonly vmDriver: VmDriverConfig['driver'];
  readonly firecrackerBinary: string;
  readonly qemuBinary: string;
  readonly qemuAccel: 'auto' | 'kvm' | 'tcg';
  readonly guestAgentBundle: string | undefined;
  /** Declared in the node agent's config (KEEP_VM_WORK_DIRS). */
  readonly keepVmWorkDirs: string | undefined;
}

export function vmDriverConfigFrom(values: VmDriverSettingValues, log: Logger): VmDriverConfig {
  return {
    log,
    driver: values.vmDriver,
    firecrackerBinary: values.firecrackerBinary,
    qemuBinary: values.qemuBinary,
    qemuAccel: values.qemuAccel,
    ...(values.guestAgentBundle !== undefined ? { guestAgentBundle: values.guestAgentBundle } : {}),
    ...(values.keepVmWorkDirs !== undefined ? { keepWorkDirsIn: values.keepVmWorkDirs } : {}),
  };
}
