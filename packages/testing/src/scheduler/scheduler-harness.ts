import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { type Client, createClient } from '@connectrpc/connect';
import { type App, AppService, AppSpecSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { ensureDevPki } from '@shellwego/kit/pki';
import { type ServiceProcess, waitServing } from '@shellwego/kit/process';
import { createMtlsTransport, expectedService } from '@shellwego/kit/rpc';
import { freePort } from '../free-port.js';
import { SERVING_DEADLINE_MS, TestPlatform } from '../platform.js';
import { startService } from '../service-process.js';
import { EventStream } from './event-stream.js';
import { type AssignBehaviour, type Capacity, FakeNode } from './fake-node.js';
import { type RegistryStandIn, startRegistryStandIn } from './registry-stand-in.js';

/** Short liveness settings so failure tests take seconds: DOWN after 1.5 s of silence. */
export const HEARTBEAT_INTERVAL_MS = 500;
export const HEARTBEAT_GRACE_MS = 1_000;

export interface HarnessOptions {
  /** A postgres:// URL; default is the embedded PGlite under the test's home. */
  readonly database?: string;
  readonly env?: Record<string, string>;
  /** Follow WatchEvents into `events` (default true; benchmarks turn it off to not load the scheduler). */
  readonly watchEvents?: boolean;
}

export interface NodeOptions {
  readonly capacity: Capacity;
  /** Labels the node asks for at join and reports in Hello (as a node agent does). */
  readonly labels?: Record<string, string>;
  /** Labels put on the join token. */
  readonly tokenLabels?: Record<string, string>;
  /** The admin's capacity ceiling put on the join token. */
  readonly capacityCeiling?: Capacity;
  readonly behaviour?: AssignBehaviour;
  readonly hostname?: string;
  /** Scheduler endpoints the node tries; default the harness's scheduler. */
  readonly urls?: readonly string[];
  /** The address the node gives each instance (FakeNodeOptions.addressFor); default none. */
  readonly addressFor?: (instanceId: string) => string;
}

export type SpecInit = MessageInitShape<typeof AppSpecSchema>;

/** One real scheduler process (plus optional standbys), a registry stand-in, admin clients and fake nodes. */
export class SchedulerHarness {
  readonly nodes: FakeNode[] = [];
  private readonly standbys: Array<{ process: ServiceProcess; lines: string[] }> = [];

  private constructor(
    readonly home: string,
    readonly platform: TestPlatform,
    readonly registry: RegistryStandIn,
    readonly apps: Client<typeof AppService>,
    readonly nodeService: Client<typeof NodeService>,
    private readonly eventStream: EventStream | undefined,
    private readonly env: Record<string, string>,
  ) {}

  static async start(options: HarnessOptions = {}): Promise<SchedulerHarness> {
    const home = await mkdtemp(join(tmpdir(), 'shellwego-sched-'));
    const pki = await ensureDevPki(home);
    const registry = await startRegistryStandIn(pki);
    const env: Record<string, string> = {
      SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL: `${HEARTBEAT_INTERVAL_MS}ms`,
      SHELLWEGO_SCHEDULER_HEARTBEAT_GRACE: `${HEARTBEAT_GRACE_MS}ms`,
      SHELLWEGO_SCHEDULER_REGISTRY_URL: registry.url,
      SHELLWEGO_SCHEDULER_LEADER_POLL_INTERVAL: '200ms',
      SHELLWEGO_SCHEDULER_STOP_GRACE_PERIOD: '1s',
      // Refused joins are recorded per interval; tests look for them soon after.
      SHELLWEGO_SCHEDULER_JOIN_AUDIT_INTERVAL: '200ms',
      ...(options.database === undefined ? {} : { SHELLWEGO_SCHEDULER_DATABASE: options.database }),
      ...options.env,
    };
    let platform: TestPlatform;
    try {
      platform = await TestPlatform.start({ services: ['scheduler'], home, env });
    } catch (error) {
      await registry.close();
      await rm(home, { recursive: true, force: true });
      throw error;
    }
    const transport = createMtlsTransport({ baseUrl: platform.url('scheduler'), server: expectedService('scheduler'), tls: platform.admin });
    const apps = createClient(AppService, transport);
    const events = options.watchEvents === false ? undefined : new EventStream(apps);
    return new SchedulerHarness(home, platform, registry, apps, createClient(NodeService, transport), events, env);
  }

  /** Every event since start-up, followed live. */
  get events(): EventStream {
    if (this.eventStream === undefined) throw new Error('this harness was started with watchEvents: false');
    return this.eventStream;
  }

  get url(): string {
    return this.platform.url('scheduler');
  }

  get caPem(): string {
    return this.platform.admin.caPem;
  }

  /** Every line the scheduler processes printed. */
  lines(): string[] {
    return [...this.platform.allLines(), ...this.standbys.flatMap((s) => s.lines)];
  }

  async token(labels: Record<string, string> = {}, capacityCeiling?: Capacity): Promise<string> {
    return (await this.nodeService.createJoinToken({ labels, ...(capacityCeiling === undefined ? {} : { capacityCeiling }) })).token;
  }

  /** Joins a node with a fresh token, starts its session and waits until the scheduler has it READY. */
  async addNode(options: NodeOptions): Promise<FakeNode> {
    const identity = await FakeNode.join(this.url, this.caPem, await this.token(options.tokenLabels, options.capacityCeiling), {
      hostname: options.hostname ?? 'fake',
      labels: options.labels ?? {},
    });
    const node = new FakeNode({
      nodeId: identity.nodeId,
      tls: identity.tls,
      schedulerUrls: options.urls ?? [this.url],
      capacity: options.capacity,
      labels: options.labels ?? {},
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      ...(options.behaviour === undefined ? {} : { behaviour: options.behaviour }),
      ...(options.addressFor === undefined ? {} : { addressFor: options.addressFor }),
    });
    this.nodes.push(node);
    const from = this.events.events.length;
    node.start();
    await this.events.waitFor(
      (e) => e.nodeId === node.nodeId && e.detail.case === 'nodeState' && e.detail.value.to === NodeState.READY,
      10_000,
      `node ${node.nodeId} READY`,
      from,
    );
    return node;
  }

  async deploy(name: string, spec: SpecInit): Promise<App> {
    if (typeof spec.image === 'string') this.registry.add(spec.image);
    const response = await this.apps.deployApp({ name, spec: create(AppSpecSchema, spec) });
    return response.app as App;
  }

  /** Starts one more scheduler process on the same home and database (a standby while the first is active). */
  async startStandby(): Promise<{ url: string; process: ServiceProcess }> {
    const port = await freePort();
    const lines: string[] = [];
    const child = await startService(
      'scheduler',
      { ...process.env, ...this.env, SHELLWEGO_HOME: this.home, SHELLWEGO_SCHEDULER_LISTEN: `127.0.0.1:${port}` },
      (line) => lines.push(line),
    );
    this.standbys.push({ process: child, lines });
    const url = `https://127.0.0.1:${port}`;
    if (!(await waitServing(url, expectedService('scheduler'), this.platform.admin, SERVING_DEADLINE_MS, new AbortController().signal))) {
      throw new Error(`the standby scheduler did not become SERVING:\n${lines.slice(-20).join('\n')}`);
    }
    return { url, process: child };
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await this.eventStream?.close();
    await this.platform.stop();
    for (const standby of this.standbys) {
      if (standby.process.child.exitCode === null && standby.process.child.signalCode === null) standby.process.child.kill('SIGTERM');
      await standby.process.exited;
    }
    await this.registry.close();
    await rm(this.home, { recursive: true, force: true });
  }
}

/** A small valid spec: 250 millicores and 256 MiB per instance. */
export function spec(overrides: SpecInit = {}): SpecInit {
  const base: SpecInit = { image: 'shop:1.0', resources: { cpuMillis: 250, memoryMib: 256 }, replicas: 1 };
  return Object.assign(base, overrides);
}
