// Development driver: no VM at all. The bundled guest agent runs as a local child process that
// serves GuestService on a Unix socket in the work dir, and the workload runs on the host as the
// agent's user (guest agent process mode). No isolation whatsoever: never use it in production.
import type { Logger } from '@shellwego/kit/log';
import { checkIdentity } from '@shellwego/kit/process';
import { alreadyRunning, BootGuard } from '../boot-guard.js';
import type { AdoptResult, StopOptions, VmDriver, VmHandle, VmRecord, VmSpec } from '../types.js';
import { VmDriverError } from '../types.js';
import { requireReadable, socketPathIn, validateSpecShape } from '../vm-spec.js';
import { logTail, sendSignal, spawnVmm, terminateVmm, watchAdopted } from '../vmm-process.js';
import { waitForSocket } from '../wait-for-socket.js';
import { prepareWorkDir, removeWorkDir } from '../work-dir.js';

export interface ProcessDriverOptions {
  readonly log: Logger;
  /** The bundled guest agent (services/guest-agent/build.ts makes it). */
  readonly guestAgentBundle: string;
  /** Node binary that runs the bundle. Default: the agent's own. */
  readonly nodeBinary?: string;
  /** The guest agent's SIGTERM-to-SIGKILL grace for the workload on shutdown. Default 5 s. */
  readonly workloadGraceMs?: number;
  /** How long the guest agent may take to listen. Default 15 s. */
  readonly readyTimeoutMs?: number;
  /** Where stopped VMs' work dirs are moved for inspection instead of being removed (KEEP_VM_WORK_DIRS). */
  readonly keepWorkDirsIn?: string;
}

const SOCKET = 'guest.sock';
const LOG = 'guest-agent.log';

export class ProcessDriver implements VmDriver {
  readonly kind = 'process';
  private readonly vms = new Map<string, VmHandle>();
  private readonly booting = new BootGuard();
  private readonly bundle: string;

  constructor(private readonly options: ProcessDriverOptions) {
    this.bundle = options.guestAgentBundle;
    options.log.warn(
      'VM driver "process" is for development only: workloads run directly on this host as the agent user, with NO isolation from each other or from the host',
    );
  }

  async boot(spec: VmSpec): Promise<VmHandle> {
    validateSpecShape(spec);
    return this.booting.run(spec.instanceId, () => this.start(spec));
  }

  private async start(spec: VmSpec): Promise<VmHandle> {
    if (this.vms.has(spec.instanceId)) {
      throw alreadyRunning(spec.instanceId);
    }
    try {
      await requireReadable(this.bundle, 'guest agent bundle');
    } catch (err) {
      throw new VmDriverError('unavailable', `${(err as Error).message}; build it with: npx tsx services/guest-agent/build.ts`);
    }
    const socket = socketPathIn(spec.workDir, SOCKET);
    await prepareWorkDir(spec.workDir, spec.instanceId);
    const logPath = `${spec.workDir}/${LOG}`;
    const identity = identityArgs(spec.instanceId, socket);
    let spawned;
    try {
      spawned = await spawnVmm(
        this.options.nodeBinary ?? process.execPath,
        [this.bundle, '--channel', `unix-listen:${socket}`, '--grace-period-ms', String(this.options.workloadGraceMs ?? 5_000)],
        { logPath, argv0: identity[0], env: guestAgentEnvironment() },
      );
      await waitForSocket(socket, {
        timeoutMs: this.options.readyTimeoutMs ?? 15_000,
        exited: spawned.exited,
        what: 'the guest agent socket',
        diagnostics: () => logTail(logPath),
      });
    } catch (err) {
      if (spawned !== undefined) {
        sendSignal(spawned.pid, 'SIGKILL');
      }
      await removeWorkDir(spec.workDir, this.options.keepWorkDirsIn);
      throw err;
    }
    const handle: VmHandle = {
      driver: 'process',
      instanceId: spec.instanceId,
      pid: spawned.pid,
      channel: { kind: 'unix', path: socket },
      workDir: spec.workDir,
      bootedAt: new Date().toISOString(),
      detail: 'process (development only, no isolation)',
      consoleLogPath: logPath,
      exited: spawned.exited,
    };
    this.vms.set(spec.instanceId, handle);
    this.options.log.info({ instance: spec.instanceId, pid: spawned.pid, socket }, 'guest agent started as a local process');
    return handle;
  }

  async stop(record: VmRecord, options: StopOptions): Promise<void> {
    const tracked = this.vms.get(record.instanceId);
    await terminateVmm({
      pid: record.pid,
      identityArgs: identityArgs(record.instanceId, channelPath(record)),
      // The guest agent stops its workload (SIGTERM, its own grace, SIGKILL) and exits.
      polite: async () => sendSignal(record.pid, 'SIGTERM'),
      graceMs: options.graceMs,
      ...(tracked !== undefined ? { exited: tracked.exited } : {}),
      killTree: true,
    });
    this.vms.delete(record.instanceId);
    await removeWorkDir(record.workDir, this.options.keepWorkDirsIn);
  }

  async adopt(record: VmRecord): Promise<AdoptResult> {
    if (record.driver !== 'process') {
      throw new VmDriverError('invalid-spec', `instance ${record.instanceId} was booted by the ${record.driver} driver, not the process driver`);
    }
    const args = identityArgs(record.instanceId, channelPath(record));
    const identity = checkIdentity(record.pid, args);
    if (identity.kind !== 'match') {
      await removeWorkDir(record.workDir, this.options.keepWorkDirsIn);
      return {
        kind: 'gone',
        reason:
          identity.kind === 'gone'
            ? `guest agent pid ${record.pid} is no longer running`
            : `pid ${record.pid} now belongs to another process (${identity.cmdline}); left alone`,
      };
    }
    const exited = watchAdopted(record.pid, args);
    const handle: VmHandle = {
      ...record,
      detail: 'process (development only, no isolation; adopted)',
      consoleLogPath: `${record.workDir}/${LOG}`,
      get exited() {
        return exited();
      },
    };
    this.vms.set(record.instanceId, handle);
    return { kind: 'adopted', handle };
  }

  async list(): Promise<VmHandle[]> {
    return [...this.vms.values()].filter((vm) => checkIdentity(vm.pid, identityArgs(vm.instanceId, channelPath(vm))).kind === 'match');
  }
}

/** argv[0] names the instance, so /proc/<pid>/cmdline proves which guest agent a pid is. */
function identityArgs(instanceId: string, socket: string): [string, string] {
  return [`shellwego-guest-agent:${instanceId}`, `unix-listen:${socket}`];
}

function channelPath(record: VmRecord): string {
  if (record.channel.kind !== 'unix') {
    throw new VmDriverError('invalid-spec', `instance ${record.instanceId}: a process-driver VM has a unix channel, not ${record.channel.kind}`);
  }
  return record.channel.path;
}

/** Only what the agent and a development workload need; the node agent's own settings stay out. */
function guestAgentEnvironment(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  for (const name of ['HOME', 'LANG', 'TZ', 'SHELLWEGO_LOG_LEVEL']) {
    const value = process.env[name];
    if (value !== undefined && value !== '') {
      env[name] = value;
    }
  }
  return env;
}
