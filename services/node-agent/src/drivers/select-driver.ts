// Picks the VM driver from config and the host: "auto" takes the strongest that can work here
// (firecracker, then qemu, then process) and says why, so an operator reading the log knows
// what isolation their workloads get.
import type { Logger } from '@shellwego/kit/log';
import { FirecrackerDriver } from './firecracker/firecracker-driver.js';
import { type HostCapabilities, probeHost } from './host-capabilities.js';
import { ProcessDriver } from './process/process-driver.js';
import { QemuDriver } from './qemu/qemu-driver.js';
import { type VmDriver, VmDriverError, type VmDriverKind } from './types.js';
import type { VmmCgroups } from './vmm-cgroup.js';

export type VmDriverChoice = 'auto' | VmDriverKind;
export type QemuAccelChoice = 'auto' | 'kvm' | 'tcg';

export interface VmDriverConfig {
  readonly log: Logger;
  readonly driver: VmDriverChoice;
  readonly firecrackerBinary?: string;
  readonly qemuBinary?: string;
  readonly qemuAccel?: QemuAccelChoice;
  /** Process driver: the bundled guest agent. */
  readonly guestAgentBundle?: string;
  readonly kvmDevice?: string;
  /** Stopped VMs' work dirs go here instead of being removed. */
  readonly keepWorkDirsIn?: string;
  /** The bound of a VM's console on disk (qemu: read from its socket). */
  readonly consoleLogBytes?: number;
  /** Each VMM (firecracker, qemu) runs in its own cgroup below these. */
  readonly cgroups?: VmmCgroups;
}

export interface DriverChoice {
  readonly kind: VmDriverKind;
  readonly reason: string;
}

/** The decision alone, from what the host offers (no side effects). */
export function chooseDriver(choice: VmDriverChoice, host: HostCapabilities, qemuAccel: QemuAccelChoice = 'auto'): DriverChoice {
  const firecrackerProblem =
    host.firecracker === undefined ? 'firecracker binary not found' : host.kvmProblem !== undefined ? `firecracker needs KVM: ${host.kvmProblem}` : undefined;
  const qemuAccelNote =
    qemuAccel !== 'auto'
      ? `accelerator ${qemuAccel} (configured)`
      : host.kvmProblem !== undefined
        ? `TCG software emulation (${host.kvmProblem})`
        : 'KVM if the first boot shows it works, else TCG';
  switch (choice) {
    case 'firecracker':
      if (firecrackerProblem !== undefined) {
        throw new VmDriverError(
          'unavailable',
          `VM driver "firecracker" is configured but ${firecrackerProblem}; install Firecracker and give the agent /dev/kvm, or choose "qemu" or "auto"`,
        );
      }
      return { kind: 'firecracker', reason: `configured: ${host.firecracker} with KVM` };
    case 'qemu':
      if (host.qemu === undefined) {
        throw new VmDriverError(
          'unavailable',
          'VM driver "qemu" is configured but qemu-system-x86_64 was not found; install the Debian package qemu-system-x86 (deploy/setup-host.sh)',
        );
      }
      return { kind: 'qemu', reason: `configured: ${host.qemu}, ${qemuAccelNote}` };
    case 'process':
      return { kind: 'process', reason: 'configured: development only, workloads run on the host without isolation' };
    case 'auto':
      if (firecrackerProblem === undefined) {
        return { kind: 'firecracker', reason: `auto: ${host.firecracker} found and /dev/kvm usable` };
      }
      if (host.qemu !== undefined) {
        return { kind: 'qemu', reason: `auto: ${firecrackerProblem}; ${host.qemu} found: real VMs with ${qemuAccelNote}` };
      }
      return {
        kind: 'process',
        reason: `auto: ${firecrackerProblem} and qemu-system-x86_64 not found: falling back to the development-only process driver, workloads run on the host WITHOUT isolation`,
      };
  }
}

export function createVmDriver(config: VmDriverConfig): { driver: VmDriver; reason: string } {
  const host = probeHost({
    ...(config.firecrackerBinary !== undefined ? { firecrackerBinary: config.firecrackerBinary } : {}),
    ...(config.qemuBinary !== undefined ? { qemuBinary: config.qemuBinary } : {}),
    ...(config.kvmDevice !== undefined ? { kvmDevice: config.kvmDevice } : {}),
  });
  const { kind, reason } = chooseDriver(config.driver, host, config.qemuAccel);
  const log = config.log.child({ vmDriver: kind });
  const keep = config.keepWorkDirsIn !== undefined ? { keepWorkDirsIn: config.keepWorkDirsIn } : {};
  const cgroups = config.cgroups !== undefined ? { cgroups: config.cgroups } : {};
  log.info({ reason }, `VM driver: ${kind}`);
  switch (kind) {
    case 'firecracker':
      return { driver: new FirecrackerDriver({ log, binary: host.firecracker ?? 'firecracker', ...keep, ...cgroups }), reason };
    case 'qemu':
      return {
        driver: new QemuDriver({
          log,
          binary: host.qemu ?? 'qemu-system-x86_64',
          accel: config.qemuAccel ?? 'auto',
          ...(config.kvmDevice !== undefined ? { kvmDevice: config.kvmDevice } : {}),
          ...keep,
          ...cgroups,
          ...(config.consoleLogBytes !== undefined ? { consoleLogBytes: config.consoleLogBytes } : {}),
        }),
        reason,
      };
    case 'process':
      if (config.guestAgentBundle === undefined) {
        throw new Error('the process driver needs the bundled guest agent: set SHELLWEGO_NODE_AGENT_GUEST_AGENT_BUNDLE (npm start builds it)');
      }
      return { driver: new ProcessDriver({ log, guestAgentBundle: config.guestAgentBundle, ...keep }), reason };
  }
}
