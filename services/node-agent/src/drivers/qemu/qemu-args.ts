// The qemu-system-x86_64 command line for one VM (contract: deploy/guest-image/README.md):
// `pc` machine (`microvm` hung in tests), the guest image's kernel + initramfs, the app rootfs as
// a read-only virtio-blk drive, the guest channel as a virtio-serial port behind a Unix socket,
// the serial console on a Unix socket the agent reads into a bounded file (QEMU waits for it
// before it starts, so no output is lost), QMP for start-up detection and a clean quit, and the
// seccomp sandbox where this QEMU has it.
import type { GuestImage, VmSpec } from '../types.js';
import { SANDBOX_OPTIONS } from './qemu-sandbox.js';

export type QemuAccel = 'kvm' | 'tcg';
/** vmlinux boots through PVH without in-guest decompression: ~3 s faster under TCG. */
export type QemuKernel = 'vmlinux' | 'vmlinuz';

export const GUEST_PORT_NAME = 'shellwego.0';

/**
 * TCG's translated-code cache, in MiB. QEMU's default is 1 GiB (an eighth of the host's memory at
 * most), touched as the guest runs new code, so a long-lived VM's VMM would grow by up to that;
 * a fixed cache keeps the VMM's overhead bounded (a full cache is flushed and refilled).
 */
export const TCG_CODE_CACHE_MIB = 128;

/**
 * QEMU's memory beyond the guest's RAM, for the VM cgroup's limit: the TCG code cache plus what
 * was measured for the rest (QEMU's heap, binary and libraries, the kernel and initramfs it maps,
 * device state): see services/node-agent/README.md "VM cgroups" for the measurement.
 */
export const QEMU_MEMORY_OVERHEAD_MIB = TCG_CODE_CACHE_MIB + 192;

export interface QemuPaths {
  /** Where the agent keeps the console (ConsolePump); QEMU never writes it. */
  readonly consoleLog: string;
  /** The serial console's socket: QEMU serves it and waits for the agent before it starts. */
  readonly consoleSocket: string;
  readonly qmpSocket: string;
  readonly guestSocket: string;
  readonly pidFile: string;
}

export interface QemuLaunch {
  readonly spec: VmSpec;
  readonly image: GuestImage;
  readonly accel: QemuAccel;
  readonly kernel: QemuKernel;
  readonly paths: QemuPaths;
  readonly extraKernelArgs?: readonly string[];
  /** -sandbox on (probeSandbox says whether this binary can). */
  readonly sandbox: boolean;
}

/** The -name value: it puts the instance id on QEMU's command line, where adopt looks for it. */
export function qemuVmName(instanceId: string): string {
  return `shellwego-${instanceId}`;
}

export function qemuKernelArgs(spec: VmSpec, extra: readonly string[] = []): string {
  return [
    'console=ttyS0',
    // With -no-reboot a panic ends QEMU instead of hanging the VM.
    'panic=-1',
    `shellwego.channel=virtio-serial:${GUEST_PORT_NAME}`,
    'shellwego.rootfs=/dev/vda',
    `shellwego.hostname=${spec.instanceId}`,
    ...extra,
  ].join(' ');
}

/** QEMU option values are comma-separated: a literal comma is written twice. */
function opt(value: string): string {
  return value.replaceAll(',', ',,');
}

export function qemuArgs(launch: QemuLaunch): string[] {
  const { spec, image, paths } = launch;
  const args = [
    '-name',
    qemuVmName(spec.instanceId),
    '-machine',
    'pc',
    '-accel',
    launch.accel === 'tcg' ? `tcg,tb-size=${TCG_CODE_CACHE_MIB}` : launch.accel,
    '-m',
    String(spec.memoryMib),
    '-smp',
    String(spec.vcpus),
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-no-reboot',
    '-monitor',
    'none',
    // Before -qmp: QEMU creates character devices in order and blocks on this one until the
    // agent connects, so QMP only answers once the console is being read.
    '-chardev',
    `socket,id=console0,path=${opt(paths.consoleSocket)},server=on,wait=on`,
    '-serial',
    'chardev:console0',
    '-qmp',
    `unix:${opt(paths.qmpSocket)},server=on,wait=off`,
    '-pidfile',
    paths.pidFile,
    '-kernel',
    launch.kernel === 'vmlinux' ? image.vmlinuxPath : image.vmlinuzPath,
    '-initrd',
    image.initramfsPath,
    '-append',
    qemuKernelArgs(spec, launch.extraKernelArgs),
    '-device',
    'virtio-serial-pci',
    '-chardev',
    `socket,id=ch0,path=${opt(paths.guestSocket)},server=on,wait=off`,
    '-device',
    `virtserialport,chardev=ch0,name=${GUEST_PORT_NAME}`,
    '-drive',
    `file=${opt(spec.rootfsPath)},format=raw,if=none,id=rootfs,readonly=on`,
    '-device',
    'virtio-blk-pci,drive=rootfs',
    // Seeds the guest CRNG early: Node blocks on getrandom() at start-up otherwise.
    '-device',
    'virtio-rng-pci',
  ];
  if (launch.sandbox) {
    args.push('-sandbox', SANDBOX_OPTIONS);
  }
  if (spec.network !== undefined) {
    const { tapDevice, guestMac, mtu } = spec.network;
    args.push(
      '-netdev',
      `tap,id=net0,ifname=${opt(tapDevice)},script=no,downscript=no`,
      '-device',
      ['virtio-net-pci', 'netdev=net0', ...(guestMac !== undefined ? [`mac=${guestMac}`] : []), ...(mtu !== undefined ? [`host_mtu=${mtu}`] : [])].join(','),
    );
  }
  return args;
}
