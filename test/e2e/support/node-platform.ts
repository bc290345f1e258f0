// The whole platform as separate processes over mTLS for end-to-end tests: scheduler, secrets and
// registry from TestPlatform, plus real node-agent processes that join with a token from the
// scheduler, each under its own state dir and labels. Admin clients, a WatchEvents follower and
// the CLI come with it. Every process logs at debug level, every node agent keeps its stopped VMs'
// work dirs under the home and every CLI output is kept, so a leak search sees all of it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Client, createClient } from '@connectrpc/connect';
import { NodeAgentService } from '@shellwego/contracts/agent/v1/agent_pb';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { SecretScopeKind, SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { createMtlsClient, createMtlsTransport, expectedService } from '@shellwego/kit/rpc';
import { buildGuestAgent } from '@shellwego/testing/guest-agent';
import { type RunningService, TestPlatform } from '@shellwego/testing/platform';
import { importBytes } from '@shellwego/testing/registry/registry-calls';
import { EventStream } from '@shellwego/testing/scheduler/event-stream';
import { execa } from 'execa';

const cliEntry = fileURLToPath(new URL('../../../cli/bin/shellwego.js', import.meta.url));

export interface AgentOptions {
  /** Names the process, its state dir, its hostname and its label role=<key> (on its join token: placement matches only those). */
  readonly key: string;
  readonly driver: 'process' | 'qemu';
  /** More SHELLWEGO_NODE_AGENT_* settings. */
  readonly env?: Record<string, string>;
}

export interface AgentProcess {
  readonly key: string;
  readonly nodeId: string;
  readonly stateDir: string;
  /** Where the agent moves a stopped VM's work dir (setting KEEP_VM_WORK_DIRS), under the home. */
  readonly keptWorkDirs: string;
  readonly client: Client<typeof NodeAgentService>;
  readonly process: RunningService;
}

export class NodePlatform {
  readonly agents = new Map<string, AgentProcess>();
  /** The stdout and stderr of every cli() call. */
  readonly cliOutput: string[] = [];

  private constructor(
    readonly platform: TestPlatform,
    readonly apps: Client<typeof AppService>,
    readonly nodes: Client<typeof NodeService>,
    readonly secrets: Client<typeof SecretsService>,
    readonly registry: Client<typeof RegistryService>,
    readonly events: EventStream,
    readonly guestAgentBundle: string,
  ) {}

  static async start(env: Record<string, string> = {}): Promise<NodePlatform> {
    const bundle = (await buildGuestAgent()).outfile;
    // Short: VM sockets live under it (Unix socket paths are limited to 107 bytes).
    const home = await mkdtemp(join(tmpdir(), 'swe2e-'));
    const platform = await TestPlatform.start({
      home,
      services: ['secrets', 'registry', 'scheduler'],
      env: (urls) => ({
        SHELLWEGO_SCHEDULER_REGISTRY_URL: urls.registry ?? '',
        SHELLWEGO_SCHEDULER_SECRETS_URL: urls.secrets ?? '',
        SHELLWEGO_SCHEDULER_STOP_GRACE_PERIOD: '2s',
        // The most a process ever says, for the leak search.
        SHELLWEGO_LOG_LEVEL: 'debug',
        ...env,
      }),
    });
    const tls = platform.admin;
    const schedulerTransport = createMtlsTransport({ baseUrl: platform.url('scheduler'), server: expectedService('scheduler'), tls });
    const apps = createClient(AppService, schedulerTransport);
    return new NodePlatform(
      platform,
      apps,
      createClient(NodeService, schedulerTransport),
      createMtlsClient(SecretsService, { baseUrl: platform.url('secrets'), server: expectedService('secrets'), tls }),
      createMtlsClient(RegistryService, { baseUrl: platform.url('registry'), server: expectedService('registry'), tls, readMaxBytes: 8 * 1024 * 1024 }),
      new EventStream(apps),
      bundle,
    );
  }

  get home(): string {
    return this.platform.home;
  }

  /** Starts a node agent that joins with a fresh token; resolves once the scheduler has it READY. */
  async addAgent(options: AgentOptions): Promise<AgentProcess> {
    const prepared = await this.prepareAgent(options);
    const running = await this.platform.addProcess(options.key, 'node-agent', prepared.env);
    const client = createMtlsClient(NodeAgentService, { baseUrl: running.url, server: { kind: 'node' }, tls: this.platform.admin });
    const nodeId = await this.nodeIdOf(options.key, client, prepared.from);
    const agent = { key: options.key, nodeId, stateDir: prepared.stateDir, keptWorkDirs: prepared.keptWorkDirs, client, process: running };
    this.agents.set(options.key, agent);
    return agent;
  }

  /** A join token and the settings of a node agent, for a caller that starts the process itself. */
  async prepareAgent(options: AgentOptions): Promise<{ env: Record<string, string>; stateDir: string; keptWorkDirs: string; from: number }> {
    const { token } = await this.nodes.createJoinToken({ labels: { role: options.key } });
    const from = this.events.events.length;
    const stateDir = join(this.home, 'agents', options.key);
    const keptWorkDirs = join(this.home, 'kept-vm-work', options.key);
    const env = {
      SHELLWEGO_HOME: this.home,
      SHELLWEGO_NODE_AGENT_STATE_DIR: stateDir,
      SHELLWEGO_NODE_AGENT_JOIN_TOKEN: token,
      SHELLWEGO_NODE_AGENT_SCHEDULER_URLS: this.platform.url('scheduler'),
      SHELLWEGO_NODE_AGENT_SECRETS_URL: this.platform.url('secrets'),
      SHELLWEGO_NODE_AGENT_REGISTRY_URL: this.platform.url('registry'),
      SHELLWEGO_NODE_AGENT_METRICS_LISTEN: '127.0.0.1:0',
      SHELLWEGO_NODE_AGENT_VM_DRIVER: options.driver,
      SHELLWEGO_NODE_AGENT_QEMU_ACCEL: 'tcg',
      SHELLWEGO_NODE_AGENT_GUEST_AGENT_BUNDLE: this.guestAgentBundle,
      SHELLWEGO_NODE_AGENT_STOP_VMS_ON_EXIT: 'true',
      SHELLWEGO_NODE_AGENT_HOSTNAME: options.key,
      SHELLWEGO_NODE_AGENT_HEARTBEAT_INTERVAL: '2s',
      SHELLWEGO_NODE_AGENT_KEEP_VM_WORK_DIRS: keptWorkDirs,
      ...options.env,
    };
    return { env, stateDir, keptWorkDirs, from };
  }

  agent(key: string): AgentProcess {
    const agent = this.agents.get(key);
    if (agent === undefined) throw new Error(`no node agent ${key}`);
    return agent;
  }

  /** The node id once the agent joined and the scheduler took its first Hello (agents are added one at a time). */
  async nodeIdOf(key: string, client: Client<typeof NodeAgentService>, from: number): Promise<string> {
    const ready = await this.events.waitFor(
      (e) => e.detail.case === 'nodeState' && e.detail.value.to === NodeState.READY,
      60_000,
      `node agent ${key} READY`,
      from,
    );
    const status = await client.getNodeStatus({});
    if (status.nodeId !== ready.nodeId) throw new Error(`node agent ${key} is node ${status.nodeId}, but node ${ready.nodeId} became READY`);
    return status.nodeId;
  }

  async importImage(tag: string, archive: Buffer): Promise<string> {
    const image = await importBytes(this.registry, archive, tag);
    return image.digest;
  }

  async setSecret(app: string, name: string, value: Buffer): Promise<number> {
    const { secret } = await this.secrets.setSecret({ scope: { kind: SecretScopeKind.APP, app }, name, value });
    return secret?.latestVersion ?? 0;
  }

  /** The shellwego CLI as the admin against this platform; never throws on a non-zero exit. Its output is kept in cliOutput. */
  async cli(args: readonly string[], options: { input?: Buffer | string; nodeAgent?: string; env?: Record<string, string> } = {}) {
    const pki = this.platform.pki;
    const result = await execa(
      process.execPath,
      [
        cliEntry,
        '--scheduler',
        this.platform.url('scheduler'),
        '--secrets',
        this.platform.url('secrets'),
        '--registry',
        this.platform.url('registry'),
        ...(options.nodeAgent === undefined ? [] : ['--node-agent', options.nodeAgent]),
        '--ca',
        pki.caCert,
        '--cert',
        pki.admin.cert,
        '--key',
        pki.admin.key,
        ...args,
      ],
      {
        reject: false,
        ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
        env: { ...options.env, SHELLWEGO_HOME: this.home },
      },
    );
    this.cliOutput.push(result.stdout, result.stderr);
    return result;
  }

  /** Every line every process printed. */
  allLines(): string[] {
    return this.platform.allLines();
  }

  /** A node agent's process as it runs now (after restartProcess, the new one; its lines include the earlier ones). */
  agentProcess(key: string): RunningService {
    return this.platform.extra(key);
  }

  /** The pids of the control services and of every node agent, as they run now. */
  platformPids(): number[] {
    const services = (['scheduler', 'secrets', 'registry'] as const).map((name) => this.platform.service(name).process.child.pid);
    const agents = [...this.agents.keys()].map((key) => this.agentProcess(key).process.child.pid);
    return [...services, ...agents].filter((pid): pid is number => pid !== undefined);
  }

  /** Stops every process (SIGTERM) but keeps the home, for searching it afterwards. */
  async stopProcesses(): Promise<void> {
    await this.events.close();
    await this.platform.stop();
  }

  /** Stops every process and removes the home. */
  async stop(): Promise<void> {
    await this.stopProcesses();
    await rm(this.home, { recursive: true, force: true });
  }
}

export interface StateFile {
  readonly instances: { instanceId: string; vm: { driver: string; pid: number; workDir: string } }[];
}

/** The state file of a node agent, as written (no secrets in it by design). */
export async function readStateFile(stateDir: string): Promise<StateFile> {
  return JSON.parse(await readFile(join(stateDir, 'instances.json'), 'utf8')) as StateFile;
}
