// A real VM under QEMU: KVM when it works on this host, TCG otherwise. With accel "auto" the
// first boot tries KVM and watches the serial console; if QEMU aborts on KVM or the kernel never
// prints, that VM is killed and booted again under TCG, and the verdict is kept for later boots.
// The guest channel is always a virtio-serial port: vhost-vsock would need an AF_VSOCK client on
// the host, which Node lacks (no host-side bridge is implemented).

import { accessSync, constants } from 'node:fs';
import { readCmdline } from '@shellwego/kit/process';
import { ConsolePump } from '../console-log.js';
import type { GuestImage, VmExit, VmRecord, VmSpec } from '../types.js';
import { VmDriverError } from '../types.js';
import { DEFAULT_MIN_VM_MEMORY_MIB, requireGuestImage, requireMinimumMemory, requireReadable, socketPathIn } from '../vm-spec.js';
import type { VmmCgroup } from '../vmm-cgroup.js';
import { type LaunchedVm, VmmDriver, type VmmDriverOptions, type VmmProfile } from '../vmm-driver.js';
import { vmmEnvironment } from '../vmm-environment.js';
import { launchVmm, sendSignal, waitForExit } from '../vmm-process.js';
import { clearWorkDir } from '../work-dir.js';
import { type KernelStartTimeouts, watchKernelStart } from './kernel-start-watch.js';
import { QEMU_MEMORY_OVERHEAD_MIB, type QemuAccel, type QemuKernel, type QemuPaths, qemuArgs, qemuVmName } from './qemu-args.js';
import { probeSandbox } from './qemu-sandbox.js';
import { QmpClient } from './qmp-client.js';

export interface QemuDriverOptions extends VmmDriverOptions {
  /** Default: qemu-system-x86_64 on PATH. */
  readonly binary?: string;
  /** "auto" (default): KVM if a boot proves it works, else TCG. */
  readonly accel?: 'auto' | QemuAccel;
  /** Default vmlinux (PVH entry, faster under TCG). */
  readonly kernel?: QemuKernel;
  /** How long QEMU may take to initialise the machine and answer on QMP. Default 15 s. */
  readonly startTimeoutMs?: number;
  readonly kvmProbe?: KernelStartTimeouts;
  /** Default /dev/kvm. */
  readonly kvmDevice?: string;
  readonly extraKernelArgs?: readonly string[];
  /** Smallest VM this driver boots. Default DEFAULT_MIN_VM_MEMORY_MIB. */
  readonly minMemoryMib?: number;
}

const FILES = {
  consoleLog: 'console.log',
  consoleSocket: 'console.sock',
  vmmLog: 'qemu.log',
  qmpSocket: 'qmp.sock',
  guestSocket: 'guest.sock',
  pidFile: 'qemu.pid',
} as const;

const PROFILE: VmmProfile = {
  process: 'qemu',
  channelKind: 'qemu-serial',
  consoleLog: FILES.consoleLog,
  consoleSocket: FILES.consoleSocket,
  startedMessage: 'qemu VM started',
  memoryOverheadMib: QEMU_MEMORY_OVERHEAD_MIB,
};

interface AccelVerdict {
  readonly accel: QemuAccel;
  readonly why: string;
}

type Launched =
  | { readonly ok: true; readonly pid: number; readonly exited: Promise<VmExit>; readonly console: ConsolePump }
  | { readonly ok: false; readonly why: string; readonly mentionsKvm: boolean };

interface Prepared {
  readonly image: GuestImage;
  readonly paths: QemuPaths;
}

export class QemuDriver extends VmmDriver<Prepared> {
  readonly kind = 'qemu';
  private verdict: AccelVerdict | undefined;
  private probing: Promise<void> | undefined;
  private sandbox: Promise<boolean> | undefined;

  constructor(private readonly options: QemuDriverOptions) {
    super(options, PROFILE);
    const accel = options.accel ?? 'auto';
    if (accel !== 'auto') {
      this.verdict = { accel, why: 'configured' };
    }
  }

  /** The accelerator later boots use and why; undefined until the first auto boot decided. */
  get accelerator(): AccelVerdict | undefined {
    return this.verdict;
  }

  protected async prepare(spec: VmSpec): Promise<Prepared> {
    requireMinimumMemory(spec, this.options.minMemoryMib ?? DEFAULT_MIN_VM_MEMORY_MIB);
    const image = await requireGuestImage(spec, 'qemu');
    await requireReadable(spec.rootfsPath, 'app root filesystem');
    const paths: QemuPaths = {
      consoleLog: `${spec.workDir}/${FILES.consoleLog}`,
      consoleSocket: socketPathIn(spec.workDir, FILES.consoleSocket),
      qmpSocket: socketPathIn(spec.workDir, FILES.qmpSocket),
      guestSocket: socketPathIn(spec.workDir, FILES.guestSocket),
      pidFile: `${spec.workDir}/${FILES.pidFile}`,
    };
    return { image, paths };
  }

  protected async launch(spec: VmSpec, { image, paths }: Prepared, cgroup: VmmCgroup | undefined): Promise<LaunchedVm> {
    const running = await this.launchWithVerdict(spec, image, paths, cgroup);
    return {
      pid: running.pid,
      exited: running.exited,
      channel: { kind: 'qemu-serial', path: paths.guestSocket },
      console: running.console,
      detail: `qemu ${running.verdict.accel} (${running.verdict.why})`,
      logFields: { accel: running.verdict.accel },
    };
  }

  private async launchWithVerdict(
    spec: VmSpec,
    image: GuestImage,
    paths: QemuPaths,
    cgroup: VmmCgroup | undefined,
  ): Promise<{ pid: number; exited: Promise<VmExit>; console: ConsolePump; verdict: AccelVerdict }> {
    // Concurrent boots wait for the first one to find out whether KVM works.
    while (this.probing !== undefined) {
      await this.probing;
    }
    const known = this.verdict ?? this.kvmDeviceVerdict();
    if (known !== undefined) {
      this.verdict = known;
      const launched = await this.launchQemu(spec, image, paths, known.accel, cgroup);
      if (!launched.ok) {
        throw new VmDriverError('boot-failed', `qemu (${known.accel}) did not start: ${launched.why}`);
      }
      return { ...launched, verdict: known };
    }
    let release: () => void = () => undefined;
    this.probing = new Promise<void>((resolve) => (release = resolve));
    try {
      const kvm = await this.launchQemu(spec, image, paths, 'kvm', cgroup);
      if (kvm.ok) {
        const start = await watchKernelStart(paths.consoleLog, kvm.exited, this.options.kvmProbe);
        if (start.ok) {
          this.verdict = { accel: 'kvm', why: `KVM works: kernel banner ${start.ms} ms after start` };
          return { ...kvm, verdict: this.verdict };
        }
        sendSignal(kvm.pid, 'SIGKILL');
        await waitForExit(kvm.pid, 5_000, kvm.exited);
        kvm.console.close();
        this.verdict = { accel: 'tcg', why: `KVM unusable: ${start.reason}` };
      } else if (kvm.mentionsKvm) {
        this.verdict = { accel: 'tcg', why: `KVM unusable: ${kvm.why}` };
      } else {
        throw new VmDriverError('boot-failed', `qemu did not start: ${kvm.why}`);
      }
      this.options.log.warn({ reason: this.verdict.why }, 'qemu: falling back to TCG (software emulation, much slower) for this and later boots');
      await clearWorkDir(spec.workDir);
      const tcg = await this.launchQemu(spec, image, paths, 'tcg', cgroup);
      if (!tcg.ok) {
        throw new VmDriverError('boot-failed', `qemu (tcg) did not start: ${tcg.why}`);
      }
      return { ...tcg, verdict: this.verdict };
    } finally {
      this.probing = undefined;
      release();
    }
  }

  private kvmDeviceVerdict(): AccelVerdict | undefined {
    const device = this.options.kvmDevice ?? '/dev/kvm';
    try {
      accessSync(device, constants.R_OK | constants.W_OK);
      return undefined;
    } catch (err) {
      return { accel: 'tcg', why: `${device} is not usable (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }

  /** Whether QEMU runs under its seccomp sandbox; probed once per driver, logged either way. */
  private sandboxed(): Promise<boolean> {
    this.sandbox ??= probeSandbox(this.binary).then((support) => {
      if (support.supported) {
        this.options.log.info({ binary: this.binary }, 'qemu: VMs run with -sandbox on (seccomp)');
      } else {
        this.options.log.warn({ binary: this.binary, reason: support.why }, 'qemu: this QEMU has no seccomp sandbox; VMs run without -sandbox');
      }
      return support.supported;
    });
    return this.sandbox;
  }

  private get binary(): string {
    return this.options.binary ?? 'qemu-system-x86_64';
  }

  /** Starts QEMU and waits until its machine is initialised (QMP greeting + status). */
  private async launchQemu(spec: VmSpec, image: GuestImage, paths: QemuPaths, accel: QemuAccel, cgroup: VmmCgroup | undefined): Promise<Launched> {
    const vmmLog = `${spec.workDir}/${FILES.vmmLog}`;
    // Connects as soon as QEMU listens (QEMU waits for it); creates the console log at once, so
    // the kernel-start watch can follow it from the first byte.
    const consolePump = ConsolePump.attach(paths.consoleSocket, paths.consoleLog, this.consoleLogBytes);
    const args = qemuArgs({
      spec,
      image,
      accel,
      kernel: this.options.kernel ?? 'vmlinux',
      paths,
      sandbox: await this.sandboxed(),
      ...(this.options.extraKernelArgs !== undefined ? { extraKernelArgs: this.options.extraKernelArgs } : {}),
    });
    const timeoutMs = this.options.startTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    const launched = await launchVmm({
      command: this.binary,
      args,
      logPath: vmmLog,
      env: vmmEnvironment(),
      ...(cgroup !== undefined ? { cgroup } : {}),
      socket: paths.qmpSocket,
      socketWhat: 'the QMP socket',
      timeoutMs,
      configure: async () => {
        const qmp = await QmpClient.connect(paths.qmpSocket, Math.max(1, deadline - Date.now()));
        try {
          const status = (await qmp.execute('query-status')) as { status?: string };
          if (status.status !== 'running') {
            throw new Error(`VM status is ${status.status ?? 'unknown'}, not running`);
          }
        } finally {
          qmp.close();
        }
      },
    });
    if (launched.ok) {
      return { ok: true, ...launched.vmm, console: consolePump };
    }
    consolePump.close();
    // A socket error usually means QEMU is exiting: its exit status and log say more.
    const { exit, log } = launched;
    const message = exit !== undefined ? `qemu exited (code ${exit.code}, signal ${exit.signal})` : (launched.error as Error).message;
    return { ok: false, why: log !== '' && !message.includes(log) ? `${message}: ${log}` : message, mentionsKvm: /kvm/i.test(log) };
  }

  protected identityArgs(record: VmRecord): string[] {
    return [qemuVmName(record.instanceId), `${record.workDir}/${FILES.pidFile}`];
  }

  protected async askToStop(record: VmRecord, timeoutMs: number): Promise<void> {
    // The guest keeps nothing (read-only rootfs, tmpfs overlay), so quitting is a clean power-off.
    // system_powerdown would need ACPI handling in the guest, which its init does not do.
    const qmp = await QmpClient.connect(`${record.workDir}/${FILES.qmpSocket}`, timeoutMs);
    try {
      await qmp.execute('quit').catch(() => undefined);
    } finally {
      qmp.close();
    }
  }

  protected override adoptedDetail(record: VmRecord): string {
    const cmdline = readCmdline(record.pid) ?? [];
    return `qemu ${cmdline[cmdline.indexOf('-accel') + 1]?.split(',')[0] ?? 'unknown'} (adopted)`;
  }
}
