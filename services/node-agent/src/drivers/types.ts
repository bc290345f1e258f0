// The VM driver contract the node agent's reconciler programs against: boot a VM for an
// instance, hand back the channel its guest agent serves GuestService on, stop it, and re-attach
// to it after an agent restart. Drivers never see secrets: those travel over the channel.
import type { GuestClientChannel } from '@shellwego/kit/vm-channel';

export type VmDriverKind = 'firecracker' | 'qemu' | 'process';

/** The kernel + initramfs every VM boots (deploy/guest-image/build.sh output). */
export interface GuestImage {
  /** bzImage. */
  readonly vmlinuzPath: string;
  /** The same kernel as an uncompressed ELF: Firecracker's kernel_image_path, QEMU via PVH. */
  readonly vmlinuxPath: string;
  readonly initramfsPath: string;
}

/** TAP networking for one VM; the TAP device must exist already (the driver does not create it). */
export interface VmNetwork {
  readonly tapDevice: string;
  /** e.g. "06:00:ac:10:00:02"; the VMM picks one when absent. */
  readonly guestMac?: string;
  readonly mtu?: number;
}

export interface VmSpec {
  /** Letters, digits and '-', at most 64 characters (it names the VM in the VMM's command line). */
  readonly instanceId: string;
  /** See vcpusForCpuMillis. */
  readonly vcpus: number;
  /**
   * The app's CPU request in thousandths of a core: the VMM's CPU quota where it runs in a cgroup.
   * Default vcpus x 1000.
   */
  readonly cpuMillis?: number;
  readonly memoryMib: number;
  /** The app's ext4 root filesystem image; attached read-only. Ignored by the process driver. */
  readonly rootfsPath: string;
  /** Required by the firecracker and qemu drivers, ignored by the process driver. */
  readonly guestImage?: GuestImage;
  readonly network?: VmNetwork;
  /**
   * Per-instance directory for sockets, pid files and console logs (never secrets). Created by
   * boot (it must be absent or empty) and removed by stop. Unix socket paths under it must fit
   * in 107 bytes.
   */
  readonly workDir: string;
}

/**
 * What the agent persists per VM (plain JSON, no secrets) to re-adopt it after a restart. The
 * pid's /proc/<pid>/cmdline names the instance, so a recycled pid is never mistaken for the VM.
 */
export interface VmRecord {
  readonly driver: VmDriverKind;
  readonly instanceId: string;
  /** The VMM's pid (process driver: the guest agent's). */
  readonly pid: number;
  readonly channel: GuestClientChannel;
  readonly workDir: string;
  /** ISO 8601. */
  readonly bootedAt: string;
}

export interface VmExit {
  /** Null when killed by a signal, or when the VM was adopted (its exit status is not ours to read). */
  readonly code: number | null;
  readonly signal: string | null;
}

export interface VmHandle extends VmRecord {
  /** How this VM runs, for logs and status: e.g. "qemu tcg (KVM unusable: ...)". */
  readonly detail: string;
  /** The VMM's console / log file inside workDir, for boot diagnostics. */
  readonly consoleLogPath: string;
  /** Settles when the VMM process is gone: guest power-off, crash, or stop. Never rejects. */
  readonly exited: Promise<VmExit>;
}

export interface StopOptions {
  /**
   * How long the VMM gets to shut down after the polite request (QMP quit, SendCtrlAltDel,
   * SIGTERM) before it is killed. The workload itself was stopped through the guest already.
   */
  readonly graceMs: number;
}

export type AdoptResult =
  | { readonly kind: 'adopted'; readonly handle: VmHandle }
  /** The VM is gone (or its pid now belongs to another process, which is left alone); its per-instance files were removed. */
  | { readonly kind: 'gone'; readonly reason: string };

export interface VmDriver {
  readonly kind: VmDriverKind;
  /** Starts the VM; resolves once the VMM runs the guest (the guest agent may still be booting). */
  boot(spec: VmSpec): Promise<VmHandle>;
  /** Powers the VM off and removes every per-instance file. Safe to call for a VM that already exited. */
  stop(handle: VmRecord, options: StopOptions): Promise<void>;
  /** Re-attaches to a VM booted by an earlier agent process. */
  adopt(record: VmRecord): Promise<AdoptResult>;
  /**
   * Once every recorded VM was adopted (or found gone): removes what VMs this driver does not
   * hold left on the host (their cgroups, killing what still runs in them). Returns what it removed.
   */
  sweepOrphans(): Promise<string[]>;
  /** The VMs this driver booted or adopted whose VMM still runs. */
  list(): Promise<VmHandle[]>;
}

export type VmDriverErrorReason =
  /** The spec cannot be booted as given (bad id, missing file, path too long). */
  | 'invalid-spec'
  /** The VMM failed to start or configure the VM. */
  | 'boot-failed'
  /** The host lacks what the driver needs (binary, guest agent bundle). */
  | 'unavailable';

/** A driver failure; the message says what to fix and never contains a secret. */
export class VmDriverError extends Error {
  constructor(
    readonly reason: VmDriverErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'VmDriverError';
  }
}
