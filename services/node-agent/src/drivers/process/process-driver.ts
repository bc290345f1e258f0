// Development driver: no VM at all. The bundled guest agent runs as a local child process that
// serves GuestService on a Unix socket in the work dir, and the workload runs on the host as the
// agent's user (guest agent process mode). No isolation whatsoever: never use it in production.
import { VmDriverError, type VmRecord, type VmSpec } from '../types.js';
import { requireReadable, socketPathIn } from '../vm-spec.js';
import { type LaunchedVm, VmmDriver, type VmmDriverOptions, type VmmProfile } from '../vmm-driver.js';
import { launchVmm, sendSignal } from '../vmm-process.js';

export interface ProcessDriverOptions extends VmmDriverOptions {
  /** The bundled guest agent (services/guest-agent/build.ts makes it). */
  readonly guestAgentBundle: string;
  /** Node binary that runs the bundle. Default: the agent's own. */
  readonly nodeBinary?: string;
  /** The guest agent's SIGTERM-to-SIGKILL grace for the workload on shutdown. Default 5 s. */
  readonly workloadGraceMs?: number;
  /** How long the guest agent may take to listen. Default 15 s. */
  readonly readyTimeoutMs?: number;
}

const SOCKET = 'guest.sock';
const LOG = 'guest-agent.log';

const PROFILE: VmmProfile = {
  process: 'guest agent',
  channelKind: 'unix',
  consoleLog: LOG,
  startedMessage: 'guest agent started as a local process',
  // The workload runs on the host, below the guest agent.
  killTree: true,
};

export class ProcessDriver extends VmmDriver<string> {
  readonly kind = 'process';

  constructor(private readonly options: ProcessDriverOptions) {
    super(options, PROFILE);
    options.log.warn(
      'VM driver "process" is for development only: workloads run directly on this host as the agent user, with NO isolation from each other or from the host',
    );
  }

  /** The guest agent's socket path. */
  protected async prepare(spec: VmSpec): Promise<string> {
    try {
      await requireReadable(this.options.guestAgentBundle, 'guest agent bundle');
    } catch (err) {
      throw new VmDriverError('unavailable', `${(err as Error).message}; build it with: npx tsx services/guest-agent/build.ts`);
    }
    return socketPathIn(spec.workDir, SOCKET);
  }

  protected async launch(spec: VmSpec, socket: string): Promise<LaunchedVm> {
    const launched = await launchVmm({
      command: this.options.nodeBinary ?? process.execPath,
      args: [this.options.guestAgentBundle, '--channel', `unix-listen:${socket}`, '--grace-period-ms', String(this.options.workloadGraceMs ?? 5_000)],
      logPath: `${spec.workDir}/${LOG}`,
      argv0: identityArgs(spec.instanceId, socket)[0],
      env: guestAgentEnvironment(),
      socket,
      socketWhat: 'the guest agent socket',
      timeoutMs: this.options.readyTimeoutMs ?? 15_000,
    });
    if (!launched.ok) {
      throw launched.error;
    }
    return { ...launched.vmm, channel: { kind: 'unix', path: socket }, detail: 'process (development only, no isolation)', logFields: { socket } };
  }

  protected identityArgs(record: VmRecord): [string, string] {
    return identityArgs(record.instanceId, channelPath(record));
  }

  protected async askToStop(record: VmRecord): Promise<void> {
    // The guest agent stops its workload (SIGTERM, its own grace, SIGKILL) and exits.
    sendSignal(record.pid, 'SIGTERM');
  }

  protected override adoptedDetail(): string {
    return 'process (development only, no isolation; adopted)';
  }
}

/** argv[0] names the instance, so /proc/<pid>/cmdline proves which guest agent a pid is. */
function identityArgs(instanceId: string, socket: string): [string, string] {
  return [`shellwego-guest-agent:${instanceId}`, `unix-listen:${socket}`];
}

const TRACE_EXPORT_SETTINGS = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_TRACES_EXPORTER',
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
];

function channelPath(record: VmRecord): string {
  if (record.channel.kind !== 'unix') {
    throw new VmDriverError('invalid-spec', `instance ${record.instanceId}: a process-driver VM has a unix channel, not ${record.channel.kind}`);
  }
  return record.channel.path;
}

/**
 * Only what the agent and a development workload need; the node agent's own settings stay out.
 * Where to export traces passes on (a process-driver guest agent runs on the host and can reach
 * the collector), but not OTEL_EXPORTER_OTLP_HEADERS, which may hold the collector's credentials.
 */
function guestAgentEnvironment(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  for (const name of ['HOME', 'LANG', 'TZ', 'SHELLWEGO_LOG_LEVEL', ...TRACE_EXPORT_SETTINGS]) {
    const value = process.env[name];
    if (value !== undefined && value !== '') {
      env[name] = value;
    }
  }
  return env;
}
