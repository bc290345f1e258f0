// What this host offers the VM drivers: the VMM binaries and whether /dev/kvm can be opened.
import { closeSync, constants, openSync } from 'node:fs';
import { findExecutable } from '@shellwego/kit/process';

export interface HostCapabilities {
  /** Resolved path, or undefined when not found. */
  readonly firecracker: string | undefined;
  readonly qemu: string | undefined;
  /** Undefined when /dev/kvm opens read-write; else why not. */
  readonly kvmProblem: string | undefined;
}

export interface ProbeOptions {
  readonly firecrackerBinary?: string;
  readonly qemuBinary?: string;
  readonly kvmDevice?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export function probeHost(options: ProbeOptions = {}): HostCapabilities {
  const env = options.env ?? process.env;
  return {
    firecracker: findExecutable(options.firecrackerBinary ?? 'firecracker', env),
    qemu: findExecutable(options.qemuBinary ?? 'qemu-system-x86_64', env),
    kvmProblem: kvmProblem(options.kvmDevice ?? '/dev/kvm'),
  };
}

/**
 * Opening the device read-write is as far as Node can check; whether this KVM can actually run
 * the guest kernel (nested KVM sometimes cannot) only a boot shows (see the qemu driver).
 */
function kvmProblem(device: string): string | undefined {
  try {
    closeSync(openSync(device, constants.O_RDWR));
    return undefined;
  } catch (err) {
    return `${device} cannot be opened read-write (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}
