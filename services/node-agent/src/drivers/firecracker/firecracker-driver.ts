// Production driver: one `firecracker` process per VM, configured through its API socket (boot
// source, machine config, read-only rootfs drive, hybrid vsock device, optional TAP interface,
// InstanceStart). The guest agent is reached over the vsock device's Unix socket with the
// CONNECT/OK handshake (lib/vm-channel). No jailer: the VMM runs as the agent's user, with only
// a PATH in its environment.
import type { GuestImage, VmRecord, VmSpec } from '../types.js';
import { DEFAULT_MIN_VM_MEMORY_MIB, requireGuestImage, requireMinimumMemory, requireReadable, socketPathIn } from '../vm-spec.js';
import type { VmmCgroup } from '../vmm-cgroup.js';
import { type LaunchedVm, VmmDriver, type VmmDriverOptions, type VmmProfile } from '../vmm-driver.js';
import { vmmEnvironment } from '../vmm-environment.js';
import { launchVmm } from '../vmm-process.js';
import { firecrackerApiPut } from './api-client.js';
import { firecrackerBootPlan } from './boot-plan.js';

export interface FirecrackerDriverOptions extends VmmDriverOptions {
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
}

const API_SOCKET = 'fc.sock';
const VSOCK_SOCKET = 'vsock.sock';
const CONSOLE_LOG = 'console.log';

// Not measured here (the test hosts have no Firecracker); Firecracker documents its own overhead
// as under 5 MiB per microVM, and the serial console and API threads stay small.
const FIRECRACKER_MEMORY_OVERHEAD_MIB = 64;

const PROFILE: VmmProfile = {
  process: 'firecracker',
  channelKind: 'firecracker-vsock',
  consoleLog: CONSOLE_LOG,
  startedMessage: 'firecracker VM started',
  memoryOverheadMib: FIRECRACKER_MEMORY_OVERHEAD_MIB,
};

interface Prepared {
  readonly image: GuestImage;
  readonly apiSocket: string;
  readonly vsockSocket: string;
}

export class FirecrackerDriver extends VmmDriver<Prepared> {
  readonly kind = 'firecracker';

  constructor(private readonly options: FirecrackerDriverOptions) {
    super(options, PROFILE);
  }

  protected async prepare(spec: VmSpec): Promise<Prepared> {
    requireMinimumMemory(spec, this.options.minMemoryMib ?? DEFAULT_MIN_VM_MEMORY_MIB);
    const image = await requireGuestImage(spec, 'firecracker');
    await requireReadable(spec.rootfsPath, 'app root filesystem');
    return { image, apiSocket: socketPathIn(spec.workDir, API_SOCKET), vsockSocket: socketPathIn(spec.workDir, VSOCK_SOCKET) };
  }

  protected async launch(spec: VmSpec, { image, apiSocket, vsockSocket }: Prepared, cgroup: VmmCgroup | undefined): Promise<LaunchedVm> {
    const vsockPort = this.options.vsockPort ?? 1024;
    const timeoutMs = this.options.apiTimeoutMs ?? 5_000;
    const plan = firecrackerBootPlan({
      spec,
      image,
      vsockUdsPath: vsockSocket,
      vsockPort,
      guestCid: this.options.guestCid ?? 3,
      ...(this.options.extraKernelArgs !== undefined ? { extraKernelArgs: this.options.extraKernelArgs } : {}),
    });
    const launched = await launchVmm({
      command: this.options.binary ?? 'firecracker',
      args: ['--api-sock', apiSocket, '--id', spec.instanceId],
      // The guest's serial console is Firecracker's stdout: both go to the console log.
      logPath: `${spec.workDir}/${CONSOLE_LOG}`,
      env: vmmEnvironment(),
      ...(cgroup !== undefined ? { cgroup } : {}),
      socket: apiSocket,
      socketWhat: 'the Firecracker API socket',
      timeoutMs: this.options.startTimeoutMs ?? 10_000,
      configure: async () => {
        for (const step of plan) {
          await firecrackerApiPut(apiSocket, step.path, step.body, timeoutMs);
        }
      },
    });
    if (!launched.ok) {
      throw launched.error;
    }
    return { ...launched.vmm, channel: { kind: 'firecracker-vsock', udsPath: vsockSocket, port: vsockPort }, detail: 'firecracker' };
  }

  protected identityArgs(record: VmRecord): string[] {
    return [record.instanceId, `${record.workDir}/${API_SOCKET}`];
  }

  protected async askToStop(record: VmRecord, timeoutMs: number): Promise<void> {
    // The guest resets on Ctrl+Alt+Del and, booted with reboot=k, Firecracker then exits.
    await firecrackerApiPut(`${record.workDir}/${API_SOCKET}`, '/actions', { action_type: 'SendCtrlAltDel' }, timeoutMs);
  }
}
