// The lifecycle every driver shares, as flintlock's VMM providers share theirs: one host process
// per VM (firecracker, qemu, or the guest agent itself for the process driver) started in a fresh
// work dir, one boot at a time per instance, stopped politely and then by SIGKILL, re-adopted
// after an agent restart once its command line proves the pid is still that VM's, and its work
// dir removed (or kept aside) whenever the VM is gone. A driver supplies only what differs: its
// checks, how it starts its VMM and which channel it offers, how it asks the VMM to stop, and the
// arguments that identify the VMM.
import type { Logger } from '@shellwego/kit/log';
import { checkIdentity } from '@shellwego/kit/process';
import type { GuestClientChannel } from '@shellwego/kit/vm-channel';
import { alreadyRunning, BootGuard } from './boot-guard.js';
import { ConsolePump, DEFAULT_CONSOLE_LOG_BYTES } from './console-log.js';
import {
  type AdoptResult,
  type StopOptions,
  type VmDriver,
  VmDriverError,
  type VmDriverKind,
  type VmExit,
  type VmHandle,
  type VmRecord,
  type VmSpec,
} from './types.js';
import { validateSpecShape } from './vm-spec.js';
import type { VmmCgroup, VmmCgroups } from './vmm-cgroup.js';
import { terminateVmm, watchAdopted } from './vmm-process.js';
import { prepareWorkDir, removeWorkDir } from './work-dir.js';

/** What every driver's options hold. */
export interface VmmDriverOptions {
  readonly log: Logger;
  /** Where stopped VMs' work dirs are moved for inspection instead of being removed (KEEP_VM_WORK_DIRS). */
  readonly keepWorkDirsIn?: string;
  /** Each VMM runs in its own cgroup below these (drivers whose profile has memoryOverheadMib). */
  readonly cgroups?: VmmCgroups;
  /** The bound of a console read from a socket (console log and its rotated half). Default 1 MiB. */
  readonly consoleLogBytes?: number;
}

/** What sets a driver's VMM apart, for the shared lifecycle. */
export interface VmmProfile {
  /** The VMM process in messages: "firecracker", "qemu", "guest agent". */
  readonly process: string;
  readonly channelKind: GuestClientChannel['kind'];
  /** The file in the work dir a handle's consoleLogPath names. */
  readonly consoleLog: string;
  /** The socket in the work dir the VMM serves the console on, read into consoleLog (ConsolePump). */
  readonly consoleSocket?: string;
  /** Logged once a VM runs. */
  readonly startedMessage: string;
  /** Also SIGKILL every descendant at stop (the process driver: the workload runs on the host). */
  readonly killTree?: boolean;
  /**
   * The VMM's own memory beyond the guest's, for its cgroup's memory limit (VM memory plus this).
   * Absent: the VMM gets no cgroup (the process driver: no VMM at all).
   */
  readonly memoryOverheadMib?: number;
}

/** A VMM running the guest, as a driver's launch hands it over. */
export interface LaunchedVm {
  readonly pid: number;
  readonly exited: Promise<VmExit>;
  readonly channel: GuestClientChannel;
  /** How this VM runs (VmHandle.detail). */
  readonly detail: string;
  /** Added to the "started" log line. */
  readonly logFields?: Readonly<Record<string, unknown>>;
  /** Reads the console socket (profile.consoleSocket) into the console log. */
  readonly console?: ConsolePump;
}

// How long a polite stop request may take, within the stop's grace period.
const STOP_REQUEST_MIN_MS = 100;
const STOP_REQUEST_MAX_MS = 2_000;

export abstract class VmmDriver<Prepared> implements VmDriver {
  abstract readonly kind: VmDriverKind;
  private readonly vms = new Map<string, VmHandle>();
  /** By VM name (VmSpec.instanceId): the cgroup each VM's VMM runs in. */
  private readonly cgroupOf = new Map<string, VmmCgroup>();
  private readonly consoles = new Map<string, ConsolePump>();
  private readonly booting = new BootGuard();

  constructor(
    private readonly common: VmmDriverOptions,
    private readonly profile: VmmProfile,
  ) {}

  /** Checks that need no work dir (memory, files, socket path lengths) and what launch needs from them. */
  protected abstract prepare(spec: VmSpec): Promise<Prepared>;
  /** Starts the VMM in the fresh, empty work dir (inside cgroup when given); on failure leaves no process behind. */
  protected abstract launch(spec: VmSpec, prepared: Prepared, cgroup: VmmCgroup | undefined): Promise<LaunchedVm>;
  /** The arguments /proc/<pid>/cmdline must hold for pid to be this VM's VMM. */
  protected abstract identityArgs(record: VmRecord): readonly string[];
  /** Asks the VMM to shut down (API request, QMP quit, SIGTERM); errors are ignored. */
  protected abstract askToStop(record: VmRecord, timeoutMs: number): Promise<void>;

  /** VmHandle.detail of an adopted VM. */
  protected adoptedDetail(_record: VmRecord): string {
    return `${this.kind} (adopted)`;
  }

  async boot(spec: VmSpec): Promise<VmHandle> {
    validateSpecShape(spec);
    return this.booting.run(spec.instanceId, () => this.start(spec));
  }

  private async start(spec: VmSpec): Promise<VmHandle> {
    if (this.vms.has(spec.instanceId)) {
      throw alreadyRunning(spec.instanceId);
    }
    const prepared = await this.prepare(spec);
    await prepareWorkDir(spec.workDir, spec.instanceId);
    let vm: LaunchedVm;
    let cgroup: VmmCgroup | undefined;
    try {
      cgroup = await this.createCgroup(spec);
      vm = await this.launch(spec, prepared, cgroup);
    } catch (err) {
      if (cgroup !== undefined) await this.common.cgroups?.release(cgroup);
      await removeWorkDir(spec.workDir, this.common.keepWorkDirsIn);
      throw err instanceof VmDriverError ? err : new VmDriverError('boot-failed', (err as Error).message, { cause: err });
    }
    if (cgroup !== undefined) this.cgroupOf.set(spec.instanceId, cgroup);
    if (vm.console !== undefined) this.consoles.set(spec.instanceId, vm.console);
    const handle: VmHandle = {
      driver: this.kind,
      instanceId: spec.instanceId,
      pid: vm.pid,
      channel: vm.channel,
      workDir: spec.workDir,
      bootedAt: new Date().toISOString(),
      detail: vm.detail,
      consoleLogPath: `${spec.workDir}/${this.profile.consoleLog}`,
      exited: vm.exited,
    };
    this.vms.set(spec.instanceId, handle);
    this.common.log.info(
      { instance: spec.instanceId, pid: vm.pid, ...(cgroup !== undefined ? { cgroup: cgroup.dirs } : {}), ...vm.logFields },
      this.profile.startedMessage,
    );
    return handle;
  }

  protected get consoleLogBytes(): number {
    return this.common.consoleLogBytes ?? DEFAULT_CONSOLE_LOG_BYTES;
  }

  /** The VM's cgroup: CPU quota from its CPU request, memory limit its memory plus the VMM's overhead. */
  private async createCgroup(spec: VmSpec): Promise<VmmCgroup | undefined> {
    const cgroups = this.common.cgroups;
    const overheadMib = this.profile.memoryOverheadMib;
    if (cgroups === undefined || overheadMib === undefined) return undefined;
    const limits = { cpuMillis: spec.cpuMillis ?? spec.vcpus * 1000, memoryBytes: (spec.memoryMib + overheadMib) * 1024 * 1024 };
    try {
      return await cgroups.create(spec.instanceId, limits);
    } catch (error) {
      throw new VmDriverError('unavailable', `cannot create the cgroup of VM ${spec.instanceId}: ${(error as Error).message}`, { cause: error });
    }
  }

  async stop(record: VmRecord, options: StopOptions): Promise<void> {
    const tracked = this.vms.get(record.instanceId);
    await terminateVmm({
      pid: record.pid,
      identityArgs: this.identityArgs(record),
      polite: () => this.askToStop(record, Math.max(STOP_REQUEST_MIN_MS, Math.min(options.graceMs, STOP_REQUEST_MAX_MS))),
      graceMs: options.graceMs,
      ...(tracked !== undefined ? { exited: tracked.exited } : {}),
      killTree: this.profile.killTree === true,
    });
    this.vms.delete(record.instanceId);
    this.consoles.get(record.instanceId)?.close();
    this.consoles.delete(record.instanceId);
    // A VM this process never tracked (a record reconciled away) may still have its cgroup.
    const cgroup = this.cgroupOf.get(record.instanceId) ?? this.common.cgroups?.find(record.instanceId);
    if (cgroup !== undefined) {
      await this.common.cgroups?.release(cgroup);
      this.cgroupOf.delete(record.instanceId);
    }
    await removeWorkDir(record.workDir, this.common.keepWorkDirsIn);
  }

  async adopt(record: VmRecord): Promise<AdoptResult> {
    if (record.driver !== this.kind) {
      throw new VmDriverError('invalid-spec', `instance ${record.instanceId} was booted by the ${record.driver} driver, not the ${this.kind} driver`);
    }
    if (record.channel.kind !== this.profile.channelKind) {
      throw new VmDriverError(
        'invalid-spec',
        `instance ${record.instanceId}: a ${this.kind}-driver VM has a ${this.profile.channelKind} channel, not ${record.channel.kind}`,
      );
    }
    const args = this.identityArgs(record);
    const identity = checkIdentity(record.pid, args);
    if (identity.kind !== 'match') {
      await removeWorkDir(record.workDir, this.common.keepWorkDirsIn);
      return {
        kind: 'gone',
        reason:
          identity.kind === 'gone'
            ? `${this.profile.process} pid ${record.pid} is no longer running`
            : `pid ${record.pid} now belongs to another process (${identity.cmdline}); left alone`,
      };
    }
    const cgroup = this.profile.memoryOverheadMib === undefined ? undefined : this.common.cgroups?.find(record.instanceId);
    if (cgroup !== undefined) {
      this.cgroupOf.set(record.instanceId, cgroup);
    } else if (this.common.cgroups !== undefined && this.profile.memoryOverheadMib !== undefined) {
      this.common.log.warn(
        { instance: record.instanceId, pid: record.pid },
        'adopted a VM that has no cgroup (booted without one): it runs without CPU and memory limits',
      );
    }
    if (this.profile.consoleSocket !== undefined) {
      const { consoleSocket, consoleLog } = this.profile;
      this.consoles.set(record.instanceId, ConsolePump.attach(`${record.workDir}/${consoleSocket}`, `${record.workDir}/${consoleLog}`, this.consoleLogBytes));
    }
    const exited = watchAdopted(record.pid, args);
    const handle: VmHandle = {
      ...record,
      detail: this.adoptedDetail(record),
      consoleLogPath: `${record.workDir}/${this.profile.consoleLog}`,
      get exited() {
        return exited();
      },
    };
    this.vms.set(record.instanceId, handle);
    return { kind: 'adopted', handle };
  }

  async sweepOrphans(): Promise<string[]> {
    const cgroups = this.common.cgroups;
    if (cgroups === undefined) return [];
    const swept = await cgroups.sweep(new Set([...this.vms.keys(), ...this.cgroupOf.keys()]));
    for (const { name, killed } of swept) {
      this.common.log.warn({ cgroup: name, killed }, 'removed a VM cgroup no VM owns');
    }
    return swept.map(({ name }) => name);
  }

  async list(): Promise<VmHandle[]> {
    return [...this.vms.values()].filter((vm) => checkIdentity(vm.pid, this.identityArgs(vm)).kind === 'match');
  }
}
