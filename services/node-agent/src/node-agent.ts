// The node agent assembled: VM driver, state file, rootfs cache, reconciler, metrics, and, once
// the node has its identity, the control-plane clients, the scheduler Session and certificate
// renewal. main.ts runs it as a service; tests and benchmarks may run it in process.
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { NodeAgentService } from '@shellwego/contracts/agent/v1/agent_pb';
import type { SessionResponse } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { Typed } from '@shellwego/kit/config';
import type { Logger } from '@shellwego/kit/log';
import { createMetricsRegistry, type MetricsRegistry } from '@shellwego/kit/metrics';
import { formatSubnet } from '@shellwego/kit/net';
import { implement, type ServiceRegistration } from '@shellwego/kit/rpc';
import { nodeCapacity } from './capacity.js';
import type { nodeAgentConfig } from './config.js';
import { ControlPlane } from './control-plane.js';
import { CertificateRenewal } from './identity/certificate-renewal.js';
import { ensureIdentity } from './identity/ensure-identity.js';
import type { NodeIdentity } from './identity/identity-store.js';
import { Reconciler } from './instances/reconciler.js';
import { StateStore } from './instances/state-store.js';
import { createNodeMetrics, type NodeMetrics } from './metrics/node-metrics.js';
import type { NodeNetwork } from './network/node-network.js';
import { openNodeNetwork } from './network/node-network-setup.js';
import { loadGivenSubnet, saveGivenSubnet } from './network/subnet-source.js';
import { nodeAgentService } from './node-agent-service.js';
import { registryFetcher } from './rootfs/registry-fetcher.js';
import { RootfsCache } from './rootfs/rootfs-cache.js';
import { SchedulerSession } from './session/scheduler-session.js';
import { type PreparedDriver, prepareVmDriver } from './vm-driver-setup.js';

export type NodeAgentSettings = Typed<(typeof nodeAgentConfig)['settings']>;

export class NodeAgent {
  private controlPlane: ControlPlane | undefined;
  private session: SchedulerSession | undefined;
  private renewal: CertificateRenewal | undefined;
  private readonly stopping = new AbortController();
  private joining: Promise<void> | undefined;

  private constructor(
    private readonly config: NodeAgentSettings,
    private readonly log: Logger,
    private readonly prepared: PreparedDriver,
    readonly reconciler: Reconciler,
    readonly metrics: NodeMetrics,
    private network: NodeNetwork | undefined,
  ) {}

  /** Session messages, one at a time: a NodeNetwork message opens the network before the Assigns after it are handled. */
  private inbound: Promise<void> = Promise.resolve();

  /**
   * Prepares the driver and re-adopts the VMs an earlier agent process left running. Gives up
   * (rejects) when `signal` aborts before the agent is ready. Its metrics go to `registry` (the
   * process's, which the kit serves; a fresh one when the agent runs inside a test).
   */
  static async create(
    config: NodeAgentSettings,
    log: Logger,
    signal: AbortSignal = new AbortController().signal,
    registry: MetricsRegistry = createMetricsRegistry(),
  ): Promise<NodeAgent> {
    const prepared = await prepareVmDriver(config, log);
    signal.throwIfAborted();
    const store = new StateStore(config.stateDir, log);
    let agent: NodeAgent | undefined;
    const controlPlane = (): ControlPlane => {
      const plane = agent?.controlPlane;
      if (plane === undefined) throw new Error('this node has not joined the cluster yet');
      return plane;
    };
    const rootfs = new RootfsCache({
      dir: join(config.stateDir, 'rootfs'),
      maxBytes: config.rootfsCacheBytes,
      log: log.child({ component: 'rootfs' }),
      fetch: (digest, grant, sha256, path, signal) => registryFetcher(controlPlane(), config.fetchTimeout)(digest, grant, sha256, path, signal),
    });
    await rootfs.init();
    let reconciler: Reconciler | undefined;
    const metrics = createNodeMetrics(registry, {
      instancesByState: () => reconciler?.countsByState() ?? new Map(),
      sessionConnected: () => agent?.session?.connected ?? false,
      rootfsCacheBytes: () => rootfs.usedBytes,
      guests: () => reconciler?.guestFigures() ?? { reporting: 0, memoryTotalBytes: 0, memoryAvailableBytes: 0, agentResidentBytes: 0 },
    });
    const network = config.network ? await openKnownNetwork(config, log) : undefined;
    reconciler = new Reconciler({
      driver: prepared.driver,
      guestImage: prepared.guestImage,
      network,
      vmDir: join(config.stateDir, 'vms'),
      rootfs,
      secrets: () => controlPlane().secrets,
      store,
      metrics,
      log,
      settings: { bootTimeoutMs: config.bootTimeout, runTimeoutMs: config.runTimeout, logBufferBytes: config.logBufferBytes },
      report: (event) => {
        if (agent?.session !== undefined) agent.session.report(event);
        else agent?.pendingEvents.push(event);
      },
      reconcileIntervalMs: config.reconcileInterval,
    });
    agent = new NodeAgent(config, log, prepared, reconciler, metrics, network);
    await reconciler.adoptAll();
    reconciler.start();
    return agent;
  }

  /** Events raised before the Session exists (instances lost across a restart); sent on its first stream. */
  private readonly pendingEvents: Parameters<SchedulerSession['report']>[0][] = [];

  get nodeId(): string {
    return this.controlPlane?.nodeId ?? '';
  }

  get connected(): boolean {
    return this.session?.connected ?? false;
  }

  /** NodeAgentService for an agent still being created: calls wait for it. */
  static services(ready: Promise<NodeAgent>, shuttingDown: AbortSignal): ServiceRegistration[] {
    const source = ready.then((agent) => ({
      nodeId: () => agent.nodeId,
      driver: agent.prepared.driver.kind,
      driverReason: agent.prepared.reason,
      connected: () => agent.connected,
      reconciler: agent.reconciler,
      shuttingDown,
    }));
    // A failed start is reported where the agent is created; calls then fail with it.
    source.catch(() => undefined);
    return [implement(NodeAgentService, nodeAgentService(source))];
  }

  /** Loads or obtains (join) the node identity, then opens the Session; runs in the background. */
  joinAndConnect(): Promise<void> {
    this.joining ??= (async () => {
      try {
        const identity = await ensureIdentity({ ...this.config, hostname: this.hostname }, this.log, this.stopping.signal);
        if (!this.stopping.signal.aborted) this.connect(identity);
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        this.log.error(
          { err: error instanceof Error ? error.message : String(error) },
          'the node cannot join the cluster; it serves its status but runs nothing',
        );
      }
    })();
    return this.joining;
  }

  /** One message as if the scheduler had sent it on the Session. */
  handleSessionMessage(message: SessionResponse): void {
    this.reconciler.handle(message);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.joining;
    this.renewal?.stop();
    await this.session?.stop();
    await this.reconciler.close(this.config.stopVmsOnExit);
  }

  private receive(message: SessionResponse): void {
    this.inbound = this.inbound
      .then(() => (message.msg.case === 'network' ? this.takeSubnet(message.msg.value.subnet) : this.reconciler.handle(message)))
      .catch((error: unknown) => this.log.error({ err: error instanceof Error ? error.message : String(error) }, 'a session message could not be handled'));
  }

  /** The scheduler's subnet for this node: kept for restarts, and the network opened with it if it is not open yet. */
  private async takeSubnet(subnet: string): Promise<void> {
    const config = this.config;
    if (!config.network) return;
    if (config.networkSubnet !== undefined) {
      if (subnet !== config.networkSubnet)
        this.log.warn({ given: subnet, override: config.networkSubnet }, 'NETWORK_SUBNET overrides the subnet the scheduler gave this node');
      return;
    }
    if (subnet === '') {
      if (this.network === undefined) this.log.error('the scheduler has no subnet for this node (its cluster CIDR is full); VMs run without network');
      return;
    }
    if ((await loadGivenSubnet(config.stateDir)) !== subnet) await saveGivenSubnet(config.stateDir, subnet);
    if (this.network === undefined) {
      const network = await openNodeNetwork({ ...config, networkSubnet: subnet }, this.log);
      await network.completeAdoption();
      this.network = network;
      this.reconciler.useNetwork(network);
      this.log.info({ subnet }, 'node network opened with the subnet the scheduler gave this node');
    } else if (formatSubnet(this.network.subnet) !== subnet) {
      this.log.error(
        { running: formatSubnet(this.network.subnet), given: subnet },
        'the scheduler gave this node another subnet than its network runs; it keeps the one it runs until the agent restarts with no VMs',
      );
    }
  }

  private get hostname(): string {
    return this.config.hostname ?? osHostname();
  }

  private connect(identity: NodeIdentity): void {
    const controlPlane = new ControlPlane(identity, { secrets: this.config.secretsUrl, registry: this.config.registryUrl });
    this.controlPlane = controlPlane;
    const capacity = nodeCapacity(this.config);
    const session = new SchedulerSession({
      urls: this.config.schedulerUrls,
      client: (url) => controlPlane.scheduler(url),
      heartbeatIntervalMs: this.config.heartbeatInterval,
      log: this.log.child({ component: 'session' }),
      callbacks: {
        hello: () => {
          const running = this.reconciler.running();
          this.log.info({ running: running.length, capacity }, 'sending Hello');
          return { capacity, labels: { ...this.config.labels }, running, driver: this.prepared.driver.kind, hostname: this.hostname };
        },
        heartbeat: () => this.reconciler.usage(),
        onMessage: (message) => this.receive(message),
      },
    });
    for (const event of this.pendingEvents.splice(0)) session.report(event);
    this.session = session;
    session.start();
    this.renewal = new CertificateRenewal(identity, {
      stateDir: this.config.stateDir,
      schedulerUrls: this.config.schedulerUrls,
      log: this.log.child({ component: 'identity' }),
      onRenewed: (renewed) => controlPlane.setIdentity(renewed),
    });
    this.renewal.start();
    this.log.info({ node: identity.nodeId, driver: this.prepared.driver.kind, capacity }, 'node agent connected to the control plane');
  }
}

/** The network opened at start when its subnet is known (the override, or the scheduler's kept from before); else it opens when the scheduler gives one. */
async function openKnownNetwork(config: NodeAgentSettings, log: Logger): Promise<NodeNetwork | undefined> {
  const subnet = config.networkSubnet ?? (await loadGivenSubnet(config.stateDir));
  if (subnet === undefined) {
    log.info('the node network opens once the scheduler gives this node its subnet');
    return undefined;
  }
  return openNodeNetwork({ ...config, networkSubnet: subnet }, log);
}
