// Production driver: one `firecracker` process per VM, configured through its API socket (boot
// source, machine config, read-only rootfs drive, hybrid vsock device, optional TAP interface,
// InstanceStart). The guest agent is reached over the vsock device's Unix socket with the
// CONNECT/OK handshake (lib/vm-channel). No jailer: the VMM runs as the agent's user.
import type { Logger } from '@shellwego/kit/log';
import { checkIdentity } from '@shellwego/kit/process';
import { alreadyRunning, BootGuard } from '../boot-guard.js';
import type { AdoptResult, StopOptions, VmDriver, VmHandle, VmRecord, VmSpec } from '../types.js';
import { VmDriverError } from '../types.js';
import { DEFAULT_MIN_VM_MEMORY_MIB, requireGuestImage, requireMinimumMemory, requireReadable, socketPathIn, validateSpecShape } from '../vm-spec.js';
import { logTail, sendSignal, spawnVmm, terminateVmm, watchAdopted } from '../vmm-process.js';
import { waitForSocket } from '../wait-for-socket.js';
import { prepareWorkDir, removeWorkDir } from '../work-dir.js';
import { firecrackerApiPut } from './api-client.js';
import { firecrackerBootPlan } from './boot-plan.js';

export interface FirecrackerDriverOptions {
  readonly log: Logger;
  /** Default: `firecracker` on PATH. */
  readonly binary?: string;
  /** The guest port of the agent's vsock bridge (the image's init listens on it). Default 1024. */
  readonly vsockPort?: number;
  /** Every VM has its own vsock device, so one CID serves all. Default 3. */
  readonly guestCid?: number;
  /** How long Firecracker may take to open its API socket. Default 10 s. */
  readonly startTimeoutMs?: number;
  /** Per API request. Default 5 s. */
  readonly apiTimeoutMs?: number;
  readonly extraKernelArgs?: readonly string[];
  /** Smallest VM this driver boots. Default DEFAULT_MIN_VM_MEMORY_MIB. */
  readonly minMemoryMib?: number;
  /** Where stopped VMs' work dirs are moved for inspection instead of being removed (KEEP_VM_WORK_DIRS). */
  readonly keepWorkDirsIn?: string;
}

const API_SOCKET = 'fc.sock';
const VSOCK_SOCKET = 'vsock.sock';
const CONSOLE_LOG = 'console.log';

export class FirecrackerDriver implements VmDriver {
  readonly kind = 'firecracker';
  private readonly vms = new Map<string, VmHandle>();
  private readonly booting = new BootGuard();

  constructor(private readonly options: FirecrackerDriverOptions) {}

  async boot(spec: VmSpec): Promise<VmHandle> {
    validateSpecShape(spec);
    requireMinimumMemory(spec, this.options.minMemoryMib ?? DEFAULT_MIN_VM_MEMORY_MIB);
    return this.booting.run(spec.instanceId, () => this.start(spec));
  }

  private async start(spec: VmSpec): Promise<VmHandle> {
    if (this.vms.has(spec.instanceId)) {
      throw alreadyRunning(spec.instanceId);
    }
    const image = await requireGuestImage(spec, 'firecracker');
    await requireReadable(spec.rootfsPath, 'app root filesystem');
    const apiSocket = socketPathIn(spec.workDir, API_SOCKET);
    const vsockSocket = socketPathIn(spec.workDir, VSOCK_SOCKET);
    await prepareWorkDir(spec.workDir, spec.instanceId);
    const consoleLogPath = `${spec.workDir}/${CONSOLE_LOG}`;
    const vsockPort = this.options.vsockPort ?? 1024;
    const timeoutMs = this.options.apiTimeoutMs ?? 5_000;
    let spawned;
    try {
      // The guest's serial console is Firecracker's stdout: both go to the console log.
      spawned = await spawnVmm(this.options.binary ?? 'firecracker', ['--api-sock', apiSocket, '--id', spec.instanceId], {
        logPath: consoleLogPath,
      });
      await waitForSocket(apiSocket, {
        timeoutMs: this.options.startTimeoutMs ?? 10_000,
        exited: spawned.exited,
        what: 'the Firecracker API socket',
        diagnostics: () => logTail(consoleLogPath),
      });
      const plan = firecrackerBootPlan({
        spec,
        image,
        vsockUdsPath: vsockSocket,
        vsockPort,
        guestCid: this.options.guestCid ?? 3,
        ...(this.options.extraKernelArgs !== undefined ? { extraKernelArgs: this.options.extraKernelArgs } : {}),
      });
      for (const step of plan) {
        await firecrackerApiPut(apiSocket, step.path, step.body, timeoutMs);
      }
    } catch (err) {
      if (spawned !== undefined) {
        sendSignal(spawned.pid, 'SIGKILL');
        await spawned.exited;
      }
      await removeWorkDir(spec.workDir, this.options.keepWorkDirsIn);
      throw err instanceof VmDriverError ? err : new VmDriverError('boot-failed', (err as Error).message, { cause: err });
    }
    const handle: VmHandle = {
      driver: 'firecracker',
      instanceId: spec.instanceId,
      pid: spawned.pid,
      channel: { kind: 'firecracker-vsock', udsPath: vsockSocket, port: vsockPort },
      workDir: spec.workDir,
      bootedAt: new Date().toISOString(),
      detail: 'firecracker',
      consoleLogPath,
      exited: spawned.exited,
    };
    this.vms.set(spec.instanceId, handle);
    this.options.log.info({ instance: spec.instanceId, pid: spawned.pid }, 'firecracker VM started');
    return handle;
  }

  async stop(record: VmRecord, options: StopOptions): Promise<void> {
    const tracked = this.vms.get(record.instanceId);
    const apiSocket = `${record.workDir}/${API_SOCKET}`;
    await terminateVmm({
      pid: record.pid,
      identityArgs: identityArgs(record),
      // The guest resets on Ctrl+Alt+Del and, booted with reboot=k, Firecracker then exits.
      polite: () => firecrackerApiPut(apiSocket, '/actions', { action_type: 'SendCtrlAltDel' }, Math.max(100, Math.min(options.graceMs, 2_000))),
      graceMs: options.graceMs,
      ...(tracked !== undefined ? { exited: tracked.exited } : {}),
    });
    this.vms.delete(record.instanceId);
    await removeWorkDir(record.workDir, this.options.keepWorkDirsIn);
  }

  async adopt(record: VmRecord): Promise<AdoptResult> {
    if (record.driver !== 'firecracker' || record.channel.kind !== 'firecracker-vsock') {
      throw new VmDriverError('invalid-spec', `instance ${record.instanceId} was booted by the ${record.driver} driver, not the firecracker driver`);
    }
    const args = identityArgs(record);
    const identity = checkIdentity(record.pid, args);
    if (identity.kind !== 'match') {
      await removeWorkDir(record.workDir, this.options.keepWorkDirsIn);
      return {
        kind: 'gone',
        reason:
          identity.kind === 'gone'
            ? `firecracker pid ${record.pid} is no longer running`
            : `pid ${record.pid} now belongs to another process (${identity.cmdline}); left alone`,
      };
    }
    const exited = watchAdopted(record.pid, args);
    const handle: VmHandle = {
      ...record,
      detail: 'firecracker (adopted)',
      consoleLogPath: `${record.workDir}/${CONSOLE_LOG}`,
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
  return [record.instanceId, `${record.workDir}/${API_SOCKET}`];
}
