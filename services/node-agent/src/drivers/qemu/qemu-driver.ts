// A real VM under QEMU: KVM when it works on this host, TCG otherwise. With accel "auto" the
// first boot tries KVM and watches the serial console; if QEMU aborts on KVM or the kernel never
// prints, that VM is killed and booted again under TCG, and the verdict is kept for later boots.
// The guest channel is always a virtio-serial port: vhost-vsock would need an AF_VSOCK client on
// the host, which Node lacks (no host-side bridge is implemented).

import { accessSync, constants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@shellwego/kit/log';
import { checkIdentity, readCmdline } from '@shellwego/kit/process';
import { alreadyRunning, BootGuard } from '../boot-guard.js';
import type { AdoptResult, GuestImage, StopOptions, VmDriver, VmExit, VmHandle, VmRecord, VmSpec } from '../types.js';
import { VmDriverError } from '../types.js';
import { DEFAULT_MIN_VM_MEMORY_MIB, requireGuestImage, requireMinimumMemory, requireReadable, socketPathIn, validateSpecShape } from '../vm-spec.js';
import { logTail, sendSignal, spawnVmm, terminateVmm, waitForExit, watchAdopted } from '../vmm-process.js';
import { waitForSocket } from '../wait-for-socket.js';
import { clearWorkDir, prepareWorkDir, removeWorkDir } from '../work-dir.js';
import { type KernelStartTimeouts, watchKernelStart } from './kernel-start-watch.js';
import { type QemuAccel, type QemuKernel, type QemuPaths, qemuArgs, qemuVmName } from './qemu-args.js';
import { QmpClient } from './qmp-client.js';

export interface QemuDriverOptions {
  readonly log: Logger;
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
  /** Where stopped VMs' work dirs are moved for inspection instead of being removed (KEEP_VM_WORK_DIRS). */
  readonly keepWorkDirsIn?: string;
}

const FILES = {
  consoleLog: 'console.log',
  vmmLog: 'qemu.log',
  qmpSocket: 'qmp.sock',
  guestSocket: 'guest.sock',
  pidFile: 'qemu.pid',
} as const;

const EXIT_SETTLE_MS = 250;

interface AccelVerdict {
  readonly accel: QemuAccel;
  readonly why: string;
}

type Launched =
  | { readonly ok: true; readonly pid: number; readonly exited: Promise<VmExit> }
  | { readonly ok: false; readonly why: string; readonly mentionsKvm: boolean };

export class QemuDriver implements VmDriver {
  readonly kind = 'qemu';
  private readonly vms = new Map<string, VmHandle>();
  private readonly booting = new BootGuard();
  private verdict: AccelVerdict | undefined;
  private probing: Promise<void> | undefined;

  constructor(private readonly options: QemuDriverOptions) {
    const accel = options.accel ?? 'auto';
    if (accel !== 'auto') {
      this.verdict = { accel, why: 'configured' };
    }
  }

  /** The accelerator later boots use and why; undefined until the first auto boot decided. */
  get accelerator(): AccelVerdict | undefined {
    return this.verdict;
  }

  async boot(spec: VmSpec): Promise<VmHandle> {
    validateSpecShape(spec);
    requireMinimumMemory(spec, this.options.minMemoryMib ?? DEFAULT_MIN_VM_MEMORY_MIB);
    return this.booting.run(spec.instanceId, () => this.start(spec));
  }

  private async start(spec: VmSpec): Promise<VmHandle> {
    if (this.vms.has(spec.instanceId)) {
      throw alreadyRunning(spec.instanceId);
    }
    const image = await requireGuestImage(spec, 'qemu');
    await requireReadable(spec.rootfsPath, 'app root filesystem');
    const paths: QemuPaths = {
      consoleLog: `${spec.workDir}/${FILES.consoleLog}`,
      qmpSocket: socketPathIn(spec.workDir, FILES.qmpSocket),
      guestSocket: socketPathIn(spec.workDir, FILES.guestSocket),
      pidFile: `${spec.workDir}/${FILES.pidFile}`,
    };
    await prepareWorkDir(spec.workDir, spec.instanceId);
    let running: { pid: number; exited: Promise<VmExit>; verdict: AccelVerdict };
    try {
      running = await this.launchWithVerdict(spec, image, paths);
    } catch (err) {
      await removeWorkDir(spec.workDir, this.options.keepWorkDirsIn);
      throw err;
    }
    const handle: VmHandle = {
      driver: 'qemu',
      instanceId: spec.instanceId,
      pid: running.pid,
      channel: { kind: 'qemu-serial', path: paths.guestSocket },
      workDir: spec.workDir,
      bootedAt: new Date().toISOString(),
      detail: `qemu ${running.verdict.accel} (${running.verdict.why})`,
      consoleLogPath: paths.consoleLog,
      exited: running.exited,
    };
    this.vms.set(spec.instanceId, handle);
    this.options.log.info({ instance: spec.instanceId, pid: running.pid, accel: running.verdict.accel }, 'qemu VM started');
    return handle;
  }

  private async launchWithVerdict(spec: VmSpec, image: GuestImage, paths: QemuPaths): Promise<{ pid: number; exited: Promise<VmExit>; verdict: AccelVerdict }> {
    // Concurrent boots wait for the first one to find out whether KVM works.
    while (this.probing !== undefined) {
      await this.probing;
    }
    const known = this.verdict ?? this.kvmDeviceVerdict();
    if (known !== undefined) {
      this.verdict = known;
      const launched = await this.launch(spec, image, paths, known.accel);
      if (!launched.ok) {
        throw new VmDriverError('boot-failed', `qemu (${known.accel}) did not start: ${launched.why}`);
      }
      return { ...launched, verdict: known };
    }
    let release: () => void = () => undefined;
    this.probing = new Promise<void>((resolve) => (release = resolve));
    try {
      const kvm = await this.launch(spec, image, paths, 'kvm');
      if (kvm.ok) {
        const start = await watchKernelStart(paths.consoleLog, kvm.exited, this.options.kvmProbe);
        if (start.ok) {
          this.verdict = { accel: 'kvm', why: `KVM works: kernel banner ${start.ms} ms after start` };
          return { ...kvm, verdict: this.verdict };
        }
        sendSignal(kvm.pid, 'SIGKILL');
        await waitForExit(kvm.pid, 5_000, kvm.exited);
        this.verdict = { accel: 'tcg', why: `KVM unusable: ${start.reason}` };
      } else if (kvm.mentionsKvm) {
        this.verdict = { accel: 'tcg', why: `KVM unusable: ${kvm.why}` };
      } else {
        throw new VmDriverError('boot-failed', `qemu did not start: ${kvm.why}`);
      }
      this.options.log.warn({ reason: this.verdict.why }, 'qemu: falling back to TCG (software emulation, much slower) for this and later boots');
      await clearWorkDir(spec.workDir);
      const tcg = await this.launch(spec, image, paths, 'tcg');
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

  /** Starts QEMU and waits until its machine is initialised (QMP greeting + status). */
  private async launch(spec: VmSpec, image: GuestImage, paths: QemuPaths, accel: QemuAccel): Promise<Launched> {
    const vmmLog = `${spec.workDir}/${FILES.vmmLog}`;
    // Created first so the kernel-start watch can follow it from the first byte.
    await writeFile(paths.consoleLog, '', { mode: 0o600 });
    const args = qemuArgs({
      spec,
      image,
      accel,
      kernel: this.options.kernel ?? 'vmlinux',
      paths,
      ...(this.options.extraKernelArgs !== undefined ? { extraKernelArgs: this.options.extraKernelArgs } : {}),
    });
    const spawned = await spawnVmm(this.options.binary ?? 'qemu-system-x86_64', args, { logPath: vmmLog });
    const timeoutMs = this.options.startTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    try {
      await waitForSocket(paths.qmpSocket, { timeoutMs, exited: spawned.exited, what: 'the QMP socket', diagnostics: () => logTail(vmmLog) });
      const qmp = await QmpClient.connect(paths.qmpSocket, Math.max(1, deadline - Date.now()));
      try {
        const status = (await qmp.execute('query-status')) as { status?: string };
        if (status.status !== 'running') {
          throw new Error(`VM status is ${status.status ?? 'unknown'}, not running`);
        }
      } finally {
        qmp.close();
      }
      return { ok: true, ...spawned };
    } catch (err) {
      // A socket error usually means QEMU is exiting: its exit status and log say more.
      const exit = await Promise.race([spawned.exited, sleep(EXIT_SETTLE_MS).then(() => undefined)]);
      sendSignal(spawned.pid, 'SIGKILL');
      await waitForExit(spawned.pid, 5_000, spawned.exited);
      const log = logTail(vmmLog);
      const message = exit !== undefined ? `qemu exited (code ${exit.code}, signal ${exit.signal})` : (err as Error).message;
      return { ok: false, why: log !== '' && !message.includes(log) ? `${message}: ${log}` : message, mentionsKvm: /kvm/i.test(log) };
    }
  }

  async stop(record: VmRecord, options: StopOptions): Promise<void> {
    const tracked = this.vms.get(record.instanceId);
    const qmpSocket = `${record.workDir}/${FILES.qmpSocket}`;
    await terminateVmm({
      pid: record.pid,
      identityArgs: identityArgs(record),
      // The guest keeps nothing (read-only rootfs, tmpfs overlay), so quitting is a clean power-off.
      // system_powerdown would need ACPI handling in the guest, which its init does not do.
      polite: async () => {
        const qmp = await QmpClient.connect(qmpSocket, Math.max(100, Math.min(options.graceMs, 2_000)));
        try {
          await qmp.execute('quit').catch(() => undefined);
        } finally {
          qmp.close();
        }
      },
      graceMs: options.graceMs,
      ...(tracked !== undefined ? { exited: tracked.exited } : {}),
    });
    this.vms.delete(record.instanceId);
    await removeWorkDir(record.workDir, this.options.keepWorkDirsIn);
  }

  async adopt(record: VmRecord): Promise<AdoptResult> {
    if (record.driver !== 'qemu' || record.channel.kind !== 'qemu-serial') {
      throw new VmDriverError('invalid-spec', `instance ${record.instanceId} was booted by the ${record.driver} driver, not the qemu driver`);
    }
    const args = identityArgs(record);
    const identity = checkIdentity(record.pid, args);
    if (identity.kind !== 'match') {
      await removeWorkDir(record.workDir, this.options.keepWorkDirsIn);
      return {
        kind: 'gone',
        reason:
          identity.kind === 'gone'
            ? `qemu pid ${record.pid} is no longer running`
            : `pid ${record.pid} now belongs to another process (${identity.cmdline}); left alone`,
      };
    }
    const cmdline = readCmdline(record.pid) ?? [];
    const accel = cmdline[cmdline.indexOf('-accel') + 1] ?? 'unknown';
    const exited = watchAdopted(record.pid, args);
    const handle: VmHandle = {
      ...record,
      detail: `qemu ${accel} (adopted)`,
      consoleLogPath: `${record.workDir}/${FILES.consoleLog}`,
      get exited() {
        return exited();
      },
    };
    this.vms.set(record.instanceId, handle);
    return { kind: 'adopted', handle };
  }

  async list(): Promise<VmHandle[]> {
    return [...this.vms.values()].filter((vm) => checkIdentity(vm.pid, identityArgs(vm)).kind === 'match');
  }
}

function identityArgs(record: VmRecord): string[] {
  return [qemuVmName(record.instanceId), `${record.workDir}/${FILES.pidFile}`];
}
