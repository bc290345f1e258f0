// The VM driver's settings, to spread into the node agent's config definition
// (env SHELLWEGO_NODE_AGENT_VM_DRIVER, ..._QEMU_ACCEL, ...), and their mapping to driver config.

import { integer, oneOf, optional, path, string } from '@shellwego/kit/config';
import type { Logger } from '@shellwego/kit/log';
import type { VmDriverConfig } from './select-driver.js';
import type { VmmCgroups } from './vmm-cgroup.js';

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
    consoleLogBytes: integer({
      default: 1024 * 1024,
      min: 64 * 1024,
      max: 1024 * 1024 * 1024,
      description: "most bytes of a VM's serial console kept on disk (console.log and its rotated half console.log.1 together), however much the guest writes",
    }),
    vmCgroups: oneOf(['auto', 'required', 'off'], {
      default: 'auto',
      description:
        'a cgroup per VMM (CPU quota from the app request, memory limit of the VM plus the VMM overhead): auto uses them where the agent can create cgroups and warns where not, required refuses to start without, off never',
    }),
    vmCgroupParent: optional(
      string({
        description:
          "the cgroup holding the VMs' cgroups, in each hierarchy: absolute (/shellwego) from its root, or relative below the agent's own cgroup; default shellwego-<12 hex of the state dir's sha256>, relative, so agents with different state dirs never share one",
      }),
    ),
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
  readonly vmCgroups: 'auto' | 'required' | 'off';
  readonly consoleLogBytes: number;
  readonly vmCgroupParent: string | undefined;
  /** Declared in the node agent's config (KEEP_VM_WORK_DIRS). */
  readonly keepVmWorkDirs: string | undefined;
}

export function vmDriverConfigFrom(values: VmDriverSettingValues, log: Logger, cgroups?: VmmCgroups): VmDriverConfig {
  return {
    log,
    ...(cgroups !== undefined ? { cgroups } : {}),
    driver: values.vmDriver,
    firecrackerBinary: values.firecrackerBinary,
    qemuBinary: values.qemuBinary,
    qemuAccel: values.qemuAccel,
    consoleLogBytes: values.consoleLogBytes,
    ...(values.guestAgentBundle !== undefined ? { guestAgentBundle: values.guestAgentBundle } : {}),
    ...(values.keepVmWorkDirs !== undefined ? { keepWorkDirsIn: values.keepVmWorkDirs } : {}),
  };
}
