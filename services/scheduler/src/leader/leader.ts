import { isIPv4 } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { AppSpec } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { type Hello, type InstanceEvent, type SessionRequest, SessionResponseSchema } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { SerialQueue } from '@shellwego/kit/async';
import type { Logger } from '@shellwego/kit/log';
import { traceCarrier } from '@shellwego/kit/tracing';
import { sql } from 'kysely';
import { rolloutLimits } from '../api/app-spec.js';
import { reconcileApp } from '../controllers/app-reconciler.js';
import { anySilent, detectFailures } from '../controllers/failure-detector.js';
import { changeState, noteProbeResult, requestStop, sendStop } from '../controllers/instance-lifecycle.js';
import { acceptHello, applyCeiling, helloProblems, markDown, newNodeRecord, setAdminState } from '../controllers/node-lifecycle.js';
import { placePending } from '../controllers/placement-pass.js';
import { startRollout, stepRollout } from '../controllers/rollout-controller.js';
import type { SchedulerMetrics } from '../metrics/scheduler-metrics.js';
import { isProbeResult, refuseReportedTransition, stateName } from '../model/instance-states.js';
import { SchedulerError } from '../model/scheduler-error.js';
import { Changes, type Outgoing } from '../store/changes.js';
import type { EventFeed } from '../store/event-feed.js';
import type { NodeSubnets } from '../store/node-subnets.js';
import type { CapacityCeiling, SchedulerDb } from '../store/tables.js';
import { writeTransaction } from '../store/write-transaction.js';
import { refreshSecretsMessage } from './assignment.js';
import { type AppRecord, type ClusterState, engineState, type NodeRecord, nodeLabels } from './cluster-state.js';
import type { GrantIssuer } from './grant-issuer.js';
import type { ResolvedImage } from './image-resolver.js';
import type { LeaderContext } from './leader-context.js';
import { loadClusterState } from './load-cluster-state.js';
import { type NodeSession, SessionHub } from './session-hub.js';
import type { WorkspaceSecrets } from './workspace-secrets.js';

/** States in which the workload has received its secrets, so a refresh means something. */
const secretsDelivered: ReadonlySet<InstanceState> = new Set([InstanceState.STARTING, InstanceState.RUNNING, InstanceState.HEALTHY]);

/** Units of work slower than this are logged (debug) with where the time went. */
const SLOW_UNIT_MS = 100;

export interface LeaderOptions {
  readonly db: SchedulerDb;
  readonly dialect: 'postgres' | 'pglite';
  readonly feed: EventFeed;
  readonly grants: GrantIssuer;
  /** Gives each node its instance subnet. */
  readonly subnets: NodeSubnets;
  /** Asked for the workspace secret names when a grant must name them all (apps with all_workspace_secrets). */
  readonly workspaceSecrets: WorkspaceSecrets;
  readonly logger: Logger;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatGraceMs: number;
  readonly stopGraceMs: number;
  readonly metrics: SchedulerMetrics;
}

export interface Deployment {
  readonly name: string;
  readonly spec: AppSpec;
  readonly image: ResolvedImage;
  readonly createdBy: string;
}

/**
 * The active scheduler: the cluster state in memory, changed by one unit of
 * work at a time (RPCs, node events, the periodic tick), each committed to
 * the database before any node hears of it. Created on taking leadership,
 * stopped on losing it.
 */
export class Leader {
  readonly hub = new SessionHub();
  private ctx: LeaderContext;
  private readonly queue = new SerialQueue();
  private stopped = false;
  private readonly ticker: NodeJS.Timeout;
  private reconcileQueued = false;
  private inbox: Array<{ nodeId: string; event: InstanceEvent }> = [];
  private inboxQueued = false;
  private lastHeartbeatFlushMs = Date.now();
  private flushingHeartbeats = false;

  private constructor(
    private readonly options: LeaderOptions,
    state: ClusterState,
  ) {
    this.ctx = this.contextFor(state);
    const tickMs = Math.min(1_000, Math.max(50, Math.floor(this.ctx.heartbeatDeadlineMs / 10)));
    this.ticker = setInterval(() => this.tick(), tickMs);
    this.ticker.unref();
  }

  static async start(options: LeaderOptions): Promise<Leader> {
    const state = await loadClusterState(options.db, options.logger, new Date());
    const leader = new Leader(options, state);
    options.logger.info({ nodes: state.nodes.size, apps: state.apps.size }, 'active: cluster state loaded');
    leader.requestReconcile();
    return leader;
  }

  /** Stops acting: ends every session with UNAVAILABLE so agents reconnect to the new active scheduler. */
  async stop(reason: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    this.hub.endAll(new SchedulerError('unavailable', `this scheduler is no longer active (${reason}); reconnect to the active scheduler`));
    await this.queue.idle();
  }

  get state(): ClusterState {
    return this.ctx.state;
  }

  deploy(input: Deployment): Promise<void> {
    // Taken here, in the DeployApp call: the unit of work may run later, in another's context.
    const traceContext = traceCarrier();
    return this.mutate((changes) => {
      let app = this.ctx.state.apps.get(input.name);
      if (app === undefined) {
        app = newApp(input.name, changes.now);
        this.ctx.state.apps.set(app.name, app);
      } else if (app.deletedAt !== null) {
        // A name used before: start afresh, keeping the old versions' numbers for the record.
        Object.assign(app, { createdAt: changes.now, currentVersion: 0, deletedAt: null, desired: new Map() });
      }
      const number = Math.max(0, ...app.versions.keys()) + 1;
      const version = {
        version: number,
        spec: input.spec,
        imageDigest: input.image.digest,
        rootfsSha256: input.image.rootfsSha256,
        imageConfig: input.image.config,
        createdAt: changes.now,
        createdBy: input.createdBy,
        limits: rolloutLimits(input.spec),
        healthyAt: null,
        traceContext,
      };
      app.versions.set(number, version);
      changes.newVersion(app.name, version);
      app.replicas = input.spec.replicas;
      startRollout(changes, app, number);
    });
  }

  scale(name: string, replicas: number): Promise<void> {
    return this.mutate((changes) => {
      const app = this.requireApp(name);
      app.replicas = replicas;
      app.deployment.desired = replicas;
      if (app.deployment.state !== DeploymentState.IN_PROGRESS) app.desired.set(app.currentVersion, replicas);
      changes.app(app);
    });
  }

  /** Stops every instance and marks the app deleted; returns how many instances were told to stop. */
  remove(name: string): Promise<number> {
    return this.mutate((changes) => {
      const app = this.requireApp(name);
      app.deletedAt = changes.now;
      app.desired = new Map();
      if (app.deployment.state === DeploymentState.IN_PROGRESS) {
        app.deployment.state = DeploymentState.FAILED;
        app.deployment.reason = 'app deleted';
        app.deployment.finishedAt = changes.now;
      }
      changes.app(app);
      const live = [...this.ctx.state.instancesOf(name)].filter((i) => i.state !== InstanceState.STOPPING);
      for (const instance of live) requestStop(this.ctx, changes, instance, 'app deleted');
      return live.length;
    });
  }

  /**
   * Sends each instance of the app whose workload has its secrets (STARTING,
   * RUNNING, HEALTHY) a fresh grant in RefreshSecrets; returns how many.
   * UNAVAILABLE when the workspace secret names an app takes all of could
   * not be listed (then none of its instances was refreshed).
   */
  async refreshSecrets(name: string): Promise<number> {
    const unsent: string[] = [];
    const refreshed = await this.mutate((changes) => {
      const app = this.requireApp(name);
      let count = 0;
      for (const instance of this.ctx.state.instancesOf(name)) {
        const nodeId = instance.nodeId;
        const version = app.versions.get(instance.version);
        if (nodeId === undefined || version === undefined || !secretsDelivered.has(instance.state)) continue;
        changes.send(nodeId, (issue) => refreshSecretsMessage(instance, version, nodeId, this.options.grants, issue), {
          workspaceSecrets: version.spec.allWorkspaceSecrets,
          unsent: (reason) => unsent.push(reason),
        });
        count++;
      }
      return count;
    });
    if (unsent.length > 0) {
      throw new SchedulerError('unavailable', `${unsent.length} of ${refreshed} instances of ${name} were not refreshed: ${unsent[0]}; retry`);
    }
    return refreshed;
  }

  /** Rolls back to the most recently healthy version other than the current one; returns it. */
  rollback(name: string): Promise<number> {
    return this.mutate((changes) => {
      const app = this.requireApp(name);
      let previous: { version: number; at: number } | undefined;
      for (const version of app.versions.values()) {
        if (version.version === app.currentVersion || version.healthyAt === null) continue;
        if (previous === undefined || version.healthyAt.getTime() > previous.at) previous = { version: version.version, at: version.healthyAt.getTime() };
      }
      if (previous === undefined) {
        throw new SchedulerError(
          'failed-precondition',
          `app ${name} has no earlier version that was ever rolled out healthy; deploy the version you want instead`,
        );
      }
      startRollout(changes, app, previous.version);
      return previous.version;
    });
  }

  cordon(nodeId: string, uncordon: boolean): Promise<void> {
    return this.mutate(async (changes) => {
      const node = await this.requireNode(nodeId);
      if (uncordon) setAdminState(this.ctx, changes, node, 'READY', 'uncordoned by an operator');
      else if (node.adminState === 'READY') setAdminState(this.ctx, changes, node, 'CORDONED', 'cordoned by an operator');
    });
  }

  /** An admin sets and removes labels placement matches; instances already placed stay where they are. */
  setLabels(nodeId: string, set: Readonly<Record<string, string>>, remove: readonly string[]): Promise<void> {
    return this.mutate(async (changes) => {
      const node = await this.requireNode(nodeId);
      const labels = { ...node.joinLabels, ...set };
      for (const key of remove) delete labels[key];
      node.joinLabels = labels;
      if (node.reported) this.ctx.state.engine.upsertNode({ id: node.id, state: engineState(node), labels: nodeLabels(node), capacity: node.capacity });
      changes.node(node);
    });
  }

  /** An admin bounds what placement counts on a node (null lifts it); instances already placed stay where they are. */
  setCapacityCeiling(nodeId: string, ceiling: CapacityCeiling | null): Promise<void> {
    return this.mutate(async (changes) => {
      const node = await this.requireNode(nodeId);
      node.capacityCeiling = ceiling;
      if (node.reported) {
        applyCeiling(this.ctx, changes, node);
        this.ctx.state.engine.upsertNode({ id: node.id, state: engineState(node), labels: nodeLabels(node), capacity: node.capacity });
      }
      changes.node(node);
    });
  }

  /** Cordons the node and lets the reconciler move its instances off; returns how many will move. */
  drain(nodeId: string): Promise<number> {
    return this.mutate(async (changes) => {
      const node = await this.requireNode(nodeId);
      setAdminState(this.ctx, changes, node, 'DRAINING', 'drained by an operator');
      return [...this.ctx.state.instancesOn(nodeId)].filter((i) => i.state !== InstanceState.STOPPING).length;
    });
  }

  /**
   * Removes a node for good: its instances are stopped there and LOST (so
   * they are placed elsewhere), every certificate it held is revoked and its
   * row replaced by a tombstone in the same commit, then its session ends
   * after the stop orders. Returns how many instances will move.
   */
  async removeNode(nodeId: string, removedBy: string): Promise<number> {
    const moving = await this.mutate(async (changes) => {
      const node = await this.requireNode(nodeId);
      const live = [...this.ctx.state.instancesOn(nodeId)];
      for (const instance of live) sendStop(this.ctx, changes, nodeId, instance.id, `node ${nodeId} was removed by ${removedBy}`);
      markDown(this.ctx, changes, node, `removed by ${removedBy}`);
      if (node.reported) this.ctx.state.engine.removeNode(nodeId);
      this.ctx.state.nodes.delete(nodeId);
      changes.removeNode(node, removedBy);
      return live.filter((instance) => instance.state !== InstanceState.STOPPING).length;
    });
    this.hub.current(nodeId)?.end(new SchedulerError('permission-denied', `node ${nodeId} was removed from the cluster; join the host again with a new token`));
    this.options.logger.warn({ node: nodeId, by: removedBy, instancesMoving: moving }, 'node removed');
    return moving;
  }

  /** Registers a node's new session (replacing an older one) and takes its Hello. */
  async openSession(nodeId: string, hello: Hello): Promise<NodeSession> {
    const problems = helloProblems(hello);
    if (problems.length > 0) throw new SchedulerError('invalid-argument', problems.join('; '));
    // Its certificates are revoked too; this also holds for one the CA signed outside the ledger.
    if ((await this.options.db.selectFrom('removed_node').select('id').where('id', '=', nodeId).executeTakeFirst()) !== undefined) {
      throw new SchedulerError('permission-denied', `node ${nodeId} was removed from the cluster; join the host again with a new token`);
    }
    const session = this.hub.open(nodeId);
    try {
      // First on the session, before any assignment: the node opens its network with it.
      let subnet = await this.nodeSubnet(nodeId);
      if (subnet === undefined) {
        // Registered at this first Hello (a CA-issued certificate, no JoinNode): its row now, with a subnet.
        await this.options.subnets.registerUnjoined(this.options.db, nodeId, new Date());
        subnet = await this.nodeSubnet(nodeId);
      }
      this.sendNetwork(nodeId, subnet ?? '');
      await this.mutate(async (changes) => {
        let node = this.ctx.state.nodes.get(nodeId);
        if (node === undefined) {
          node = (await this.loadNode(nodeId)) ?? newNodeRecord(nodeId, changes.now);
          this.ctx.state.nodes.set(nodeId, node);
        }
        acceptHello(this.ctx, changes, node, hello);
      });
    } catch (error) {
      this.hub.close(session);
      throw error;
    }
    this.options.logger.info({ node: nodeId, session: session.id, running: hello.running.length }, 'node session opened');
    return session;
  }

  /** The node's subnet, given now if it has none; undefined when it has no row yet; '' when none is left (logged). */
  private async nodeSubnet(nodeId: string): Promise<string | undefined> {
    try {
      return await this.options.subnets.ensure(this.options.db, nodeId);
    } catch (error) {
      if (!(error instanceof SchedulerError) || error.kind !== 'resource-exhausted') throw error;
      this.options.logger.error({ node: nodeId, err: error.message }, 'the node gets no subnet: its instances run without network');
      return '';
    }
  }

  private sendNetwork(nodeId: string, subnet: string): void {
    this.hub.send(nodeId, create(SessionResponseSchema, { msg: { case: 'network', value: { subnet } } }));
  }

  onSessionMessage(session: NodeSession, request: SessionRequest): void {
    if (this.stopped) return;
    const node = this.ctx.state.nodes.get(session.nodeId);
    const msg = request.msg;
    if (node !== undefined && !node.down) node.lastSeenMs = Date.now();
    switch (msg.case) {
      case 'heartbeat':
        if (node !== undefined) {
          node.lastHeartbeat = new Date();
          node.heartbeatDirty = true;
        }
        return;
      case 'instanceEvent':
        this.inbox.push({ nodeId: session.nodeId, event: msg.value });
        if (!this.inboxQueued) {
          this.inboxQueued = true;
          void this.mutate((changes) => this.applyInbox(changes)).catch((error: unknown) => this.logFailure('applying instance events', error));
        }
        return;
      case 'hello':
        this.options.logger.warn({ node: session.nodeId }, 'ignored a second Hello on one session; a new Hello needs a new session');
        return;
      default:
        this.options.logger.warn({ node: session.nodeId }, 'ignored an empty or unknown session message');
    }
  }

  closeSession(session: NodeSession): void {
    if (this.hub.close(session)) this.options.logger.info({ node: session.nodeId, session: session.id }, 'node session ended');
  }

  /** Asks for one pass of rollouts, app targets and placement (coalesced). */
  requestReconcile(): void {
    if (this.reconcileQueued || this.stopped) return;
    this.reconcileQueued = true;
    void this.queue
      .run(async () => {
        this.reconcileQueued = false;
        await this.unitOfWork((changes) => this.reconcile(changes), false);
      })
      .catch((error: unknown) => this.logFailure('reconciling', error));
  }

  private reconcile(changes: Changes): void {
    const nowMs = changes.now.getTime();
    for (const app of this.ctx.state.apps.values()) {
      stepRollout(this.ctx, changes, app, nowMs);
      reconcileApp(this.ctx, changes, app, nowMs);
    }
    placePending(this.ctx, changes);
  }

  private applyInbox(changes: Changes): void {
    this.inboxQueued = false;
    const batch = this.inbox;
    this.inbox = [];
    const logger = this.options.logger;
    for (const { nodeId, event } of batch) {
      const instance = this.ctx.state.instance(event.instanceId);
      if (instance === undefined) {
        logger.warn(
          { node: nodeId, instance: event.instanceId, state: stateName(event.state) },
          'ignored an event for an instance that is unknown or already finished',
        );
        continue;
      }
      if (instance.nodeId !== nodeId) {
        logger.warn({ node: nodeId, instance: instance.id, owner: instance.nodeId }, 'ignored an event for an instance placed on another node');
        continue;
      }
      if (isProbeResult(instance.state, event.state)) {
        // An empty one is a RUNNING event sent again after a reconnect, not a result.
        if (event.reason !== '' && event.reason !== instance.reason) noteProbeResult(changes, instance, event.reason);
        continue;
      }
      const refusal = refuseReportedTransition(instance.state, event.state);
      if (refusal !== undefined) {
        const level = event.state === instance.state ? 'debug' : 'warn';
        logger[level](
          { node: nodeId, instance: instance.id, from: stateName(instance.state), to: stateName(event.state) },
          `ignored an instance event: ${refusal}`,
        );
        continue;
      }
      const reason = event.reason !== '' ? event.reason : event.state === InstanceState.FAILED ? 'the node gave no reason' : '';
      const time = event.time === undefined ? changes.now : timestampDate(event.time);
      if (event.address === '' || isIPv4(event.address)) instance.address = event.address;
      else logger.warn({ node: nodeId, instance: instance.id }, 'ignored an instance address that is not a dotted-quad IPv4 address');
      changeState(this.ctx, changes, instance, event.state, reason, event.exitCode, time);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    const nowMs = Date.now();
    if (anySilent(this.ctx, nowMs)) {
      void this.mutate((changes) => {
        for (const node of detectFailures(this.ctx, changes, Date.now())) {
          this.hub
            .current(node.id)
            ?.end(new SchedulerError('unavailable', 'this node missed its heartbeat deadline and was marked DOWN; reconnect with a new Hello'));
        }
      }).catch((error: unknown) => this.logFailure('marking silent nodes down', error));
    }
    if (this.needsTimedPass(nowMs)) this.requestReconcile();
    if (nowMs - this.lastHeartbeatFlushMs >= this.options.heartbeatIntervalMs) {
      this.lastHeartbeatFlushMs = nowMs;
      void this.flushHeartbeats();
    }
  }

  /** Rollouts wait on clocks (min healthy time, deadlines), and so do restart back-offs and drains. */
  private needsTimedPass(nowMs: number): boolean {
    for (const app of this.ctx.state.apps.values()) {
      if (app.deployment.state === DeploymentState.IN_PROGRESS) return true;
      if (app.restartNotBeforeMs > 0 && app.restartNotBeforeMs <= nowMs) {
        app.restartNotBeforeMs = 0;
        return true;
      }
    }
    for (const node of this.ctx.state.nodes.values()) {
      if (node.adminState === 'DRAINING' && this.ctx.state.instancesOn(node.id).size > 0) return true;
    }
    return false;
  }

  /** Heartbeats change no decision until a deadline passes: store them in one batch per interval. */
  private async flushHeartbeats(): Promise<void> {
    if (this.flushingHeartbeats) return;
    const dirty = [...this.ctx.state.nodes.values()].filter((n) => n.heartbeatDirty && n.lastHeartbeat !== null);
    if (dirty.length === 0) return;
    this.flushingHeartbeats = true;
    for (const node of dirty) node.heartbeatDirty = false;
    try {
      await sql`UPDATE node SET last_heartbeat = beat.at
        FROM unnest(${dirty.map((n) => n.id)}::text[], ${dirty.map((n) => n.lastHeartbeat)}::timestamptz[]) AS beat(id, at)
        WHERE node.id = beat.id`.execute(this.options.db);
    } catch (error) {
      this.logFailure('storing heartbeats', error);
    } finally {
      this.flushingHeartbeats = false;
    }
  }

  private mutate<T>(work: (changes: Changes) => T | Promise<T>): Promise<T> {
    return this.queue.run(() => this.unitOfWork(work, true));
  }

  /**
   * Runs `work` and (with `reconcileAfter`) a reconcile pass over what it
   * changed, commits both, then sends their messages. If
   * anything fails after memory was changed, the state is rebuilt from the
   * database, which still holds the last committed truth.
   */
  private async unitOfWork<T>(work: (changes: Changes) => T | Promise<T>, reconcileAfter: boolean): Promise<T> {
    if (this.stopped) throw new SchedulerError('unavailable', 'this scheduler is no longer active; retry against the active scheduler');
    const changes = new Changes();
    let result: T;
    const t0 = performance.now();
    let t1 = t0;
    let t2 = t0;
    try {
      result = await work(changes);
      // Act on the change in the same commit: one transaction per request, not two.
      if (reconcileAfter && !changes.isUntouched) this.reconcile(changes);
      t1 = performance.now();
      if (changes.needsWrite) {
        await writeTransaction(this.options.db, this.options.dialect, (trx) => changes.write(trx));
        this.options.feed.wake();
      }
      t2 = performance.now();
    } catch (error) {
      if (!changes.isUntouched) await this.reload(error);
      throw error;
    }
    await this.send(changes.outgoing);
    const t3 = performance.now();
    if (t3 - t0 > SLOW_UNIT_MS) {
      const ms = (from: number, to: number) => Math.round(to - from);
      this.options.logger.debug(
        { decideMs: ms(t0, t1), storeMs: ms(t1, t2), sendMs: ms(t2, t3), events: changes.events.length, messages: changes.outgoing.length },
        'slow unit of work',
      );
    }
    return result;
  }

  /**
   * Builds and sends committed messages in order. Grants naming every
   * workspace secret need those names now, asked once for all of them; when
   * the secrets service cannot say, such messages are not sent and their
   * `unsent` says why.
   */
  private async send(outgoing: readonly Outgoing[]): Promise<void> {
    let workspaceSecretNames: readonly string[] = [];
    let unavailable: string | undefined;
    if (outgoing.some((o) => o.workspaceSecrets)) {
      try {
        workspaceSecretNames = await this.options.workspaceSecrets.names();
      } catch (error) {
        unavailable = error instanceof Error ? error.message : String(error);
        this.options.logger.error({ err: unavailable }, 'grants naming every workspace secret cannot be issued');
      }
    }
    for (const o of outgoing) {
      if (o.workspaceSecrets && unavailable !== undefined) {
        o.unsent?.(unavailable);
        continue;
      }
      const message = o.build({ workspaceSecretNames });
      if (message !== undefined) this.hub.send(o.nodeId, message);
    }
  }

  /** An instance whose Assign could not be sent is FAILED (the reconciler replaces it after its back-off). */
  private failUnsentAssignment(instanceId: string, nodeId: string, reason: string): void {
    void this.mutate((changes) => {
      const instance = this.ctx.state.instance(instanceId);
      if (instance === undefined || instance.nodeId !== nodeId || instance.state !== InstanceState.ASSIGNED) return;
      changeState(this.ctx, changes, instance, InstanceState.FAILED, `its grant could not be issued: ${reason}`);
    }).catch((error: unknown) => this.logFailure('failing an assignment that could not be sent', error));
  }

  private async reload(cause: unknown): Promise<void> {
    this.options.logger.error(
      { err: cause instanceof Error ? cause.message : String(cause) },
      'a change could not be stored; reloading the cluster state from the database',
    );
    const previous = this.ctx.state;
    const state = await loadClusterState(this.options.db, this.options.logger, new Date());
    // Liveness is not stored exactly; keep what this process observed.
    for (const node of state.nodes.values()) {
      const known = previous.nodes.get(node.id);
      if (known !== undefined) node.lastSeenMs = known.lastSeenMs;
    }
    this.ctx = this.contextFor(state);
  }

  private contextFor(state: ClusterState): LeaderContext {
    return {
      state,
      grants: this.options.grants,
      logger: this.options.logger,
      stopGraceMs: this.options.stopGraceMs,
      heartbeatDeadlineMs: this.options.heartbeatIntervalMs + this.options.heartbeatGraceMs,
      metrics: this.options.metrics,
      failUnsentAssignment: (instanceId, nodeId, reason) => this.failUnsentAssignment(instanceId, nodeId, reason),
    };
  }

  private requireApp(name: string): AppRecord {
    const app = this.ctx.state.apps.get(name);
    if (app === undefined || app.deletedAt !== null) throw new SchedulerError('not-found', `app ${name} not found`);
    return app;
  }

  private async requireNode(nodeId: string): Promise<NodeRecord> {
    let node = this.ctx.state.nodes.get(nodeId);
    if (node === undefined) {
      node = await this.loadNode(nodeId);
      if (node === undefined) throw new SchedulerError('not-found', `node ${nodeId} not found; see \`shellwego node ls\``);
      this.ctx.state.nodes.set(nodeId, node);
    }
    return node;
  }

  /** A node that joined (JoinNode writes the row) but has not said Hello to this process yet. */
  private async loadNode(nodeId: string): Promise<NodeRecord | undefined> {
    const row = await this.options.db.selectFrom('node').selectAll().where('id', '=', nodeId).executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      ...newNodeRecord(row.id, row.joined_at),
      hostname: row.hostname,
      joinLabels: row.join_labels,
      reportedLabels: row.reported_labels,
      capacityCeiling: row.capacity_ceiling,
      adminState: row.admin_state,
      lastSeenMs: Date.now(),
    };
  }

  private logFailure(what: string, error: unknown): void {
    if (this.stopped) return;
    this.options.logger.error({ err: error instanceof Error ? error.message : String(error) }, `${what} failed`);
  }
}

function newApp(name: string, now: Date): AppRecord {
  return {
    name,
    createdAt: now,
    currentVersion: 0,
    replicas: 0,
    desired: new Map(),
    deployment: { targetVersion: 0, fromVersion: 0, state: DeploymentState.UNSPECIFIED, healthy: 0, desired: 0, reason: '', startedAt: null, finishedAt: null },
    deletedAt: null,
    versions: new Map(),
    rolloutFailure: undefined,
    restartFailures: 0,
    restartNotBeforeMs: 0,
  };
}
