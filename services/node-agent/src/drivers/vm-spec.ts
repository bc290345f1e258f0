// Checks on a VmSpec that every driver shares, so a bad spec fails before a VMM is spawned.
import { access, constants } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { type GuestImage, VmDriverError, type VmSpec } from './types.js';

// Firecracker's --id accepts letters, digits and '-' up to 64 characters; the other drivers
// use the same rule so one id works everywhere.
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
// sun_path is 108 bytes including the terminating NUL.
const MAX_UNIX_SOCKET_PATH_BYTES = 107;
const MAX_VCPUS = 32;

/** vCPUs for a CPU reservation in thousandths of a core: rounded up, at least one. */
export function vcpusForCpuMillis(cpuMillis: number): number {
  return Math.max(1, Math.ceil(cpuMillis / 1000));
}

export function validateSpecShape(spec: VmSpec): void {
  if (!INSTANCE_ID.test(spec.instanceId)) {
    throw new VmDriverError(
      'invalid-spec',
      `instance id ${JSON.stringify(spec.instanceId)} is not usable as a VM name: use letters, digits and '-' only, at most 64 characters, starting with a letter or digit`,
    );
  }
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > MAX_VCPUS) {
    throw new VmDriverError('invalid-spec', `instance ${spec.instanceId}: vcpus must be an integer from 1 to ${MAX_VCPUS}, got ${spec.vcpus}`);
  }
  if (!Number.isInteger(spec.memoryMib) || spec.memoryMib < 1) {
    throw new VmDriverError('invalid-spec', `instance ${spec.instanceId}: memoryMib must be a positive integer, got ${spec.memoryMib}`);
  }
  if (!isAbsolute(spec.workDir)) {
    throw new VmDriverError('invalid-spec', `instance ${spec.instanceId}: workDir must be an absolute path, got ${JSON.stringify(spec.workDir)}`);
  }
}

/** A Unix socket path under the work dir, refused up front when the kernel could not bind it. */
export function socketPathIn(workDir: string, name: string): string {
  const path = `${workDir}/${name}`;
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_SOCKET_PATH_BYTES) {
    throw new VmDriverError(
      'invalid-spec',
      `socket path ${path} is ${bytes} bytes, over the ${MAX_UNIX_SOCKET_PATH_BYTES}-byte Unix socket limit: use a shorter state directory for the node agent`,
    );
  }
  return path;
}

/**
 * The guest image unpacks its initramfs (Node + the agent, ~113 MiB) into guest RAM. Measured
 * with QEMU/TCG: 384 MiB boots, 256 MiB does not (init cannot exec node: ETXTBSY).
 */
export const DEFAULT_MIN_VM_MEMORY_MIB = 384;

export function requireMinimumMemory(spec: VmSpec, minMib: number): void {
  if (spec.memoryMib < minMib) {
    throw new VmDriverError(
      'invalid-spec',
      `instance ${spec.instanceId}: ${spec.memoryMib} MiB is below the ${minMib} MiB a VM needs to start the guest image (its initramfs with Node unpacks into RAM); reserve more memory for the app`,
    );
  }
}

/** The guest image a VM driver needs, with every file readable. */
export async function requireGuestImage(spec: VmSpec, driver: string): Promise<GuestImage> {
  const image = spec.guestImage;
  if (image === undefined) {
    throw new VmDriverError(
      'invalid-spec',
      `instance ${spec.instanceId}: the ${driver} driver needs the guest image (kernel + initramfs from deploy/guest-image/build.sh) in the boot spec`,
    );
  }
  await requireReadable(image.vmlinuxPath, 'guest kernel (vmlinux)');
  await requireReadable(image.vmlinuzPath, 'guest kernel (vmlinuz)');
  await requireReadable(image.initramfsPath, 'guest initramfs');
  return image;
}

export async function requireReadable(path: string, what: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new VmDriverError('invalid-spec', `${what} ${path} is not readable (${code})`);
  }
}
