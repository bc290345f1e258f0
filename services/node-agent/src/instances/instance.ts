// One instance on this node, from its assignment (or its re-adoption after an agent restart) to
// STOPPED or FAILED: rootfs -> VM -> guest agent -> secrets -> Run -> health; stop (SIGTERM
// through the guest, grace, power-off, files removed); secret refreshes. Where it is in that life
// is its InstanceLifecycle (instance-lifecycle.ts), which reports every change to the scheduler.
// Secrets exist here only between ResolveSecrets and the Run / InjectSecrets call, then are wiped.
import { create, fromBinary } from '@bufbuild/protobuf';
import { type Client, ConnectError } from '@connectrpc/connect';
import { type Grant, GrantClaimsSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import {
  type GuestFigures,
  GuestNetworkSchema,
  InjectSecretsRequestSchema,
  type ProcessExited,
  RunRequestSchema,
} from '@shellwego/contracts/guest/v1/guest_pb';
import type { InstanceSpec } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { Logger } from '@shellwego/kit/log';
import { type SecretBytes, wipeAll } from '@shellwego/kit/secret-bytes';
import { outsideTrace, runInSpan, withTraceCarrier } from '@shellwego/kit/tracing';
import { DEFAULT_MIN_VM_MEMORY_MIB, type GuestImage, type VmDriver, type VmExit, type VmHandle, vcpusForCpuMillis, vmRecordOf } from '../drivers/index.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { InstanceNetwork, NodeNetwork } from '../network/node-network.js';
import type { RootfsCache, RootfsLease } from '../rootfs/rootfs-cache.js';
import type { InstanceEventInit } from '../session/scheduler-session.js';
import { GuestLink } from './guest-link.js';
import { HealthMonitor, type HealthOutcome } from './health-monitor.js';
import { InstanceLifecycle, type InstancePhase, phaseOf } from './instance-lifecycle.js';
import { OutputBuffer } from './output-buffer.js';
import { resolveSecrets, secretEnv } from './resolve-secrets.js';
import type { PersistedInstance, StateStore } from './state-store.js';
import { consoleTail, describeVmExit } from './vm-diagnostics.js';
import { vmNameFor } from './vm-name.js';
import { WorkloadFollower } from './workload-follower.js';

export interface InstanceSettings {
  readonly bootTimeoutMs: number;
  readonly runTimeoutMs: number;
  readonly logBufferBytes: number;
}

export interface InstanceDeps {
  readonly driver: VmDriver;
  readonly guestImage: GuestImage | undefined;
  /** The node's VM network; absent: VMs get no network interface (and the process driver never does). Set once it opens. */
  network?: NodeNetwork | undefined;
  readonly vmDir: string;
  readonly rootfs: RootfsCache;
  readonly secrets: () => Client<typeof SecretsService>;
  readonly store: StateStore;
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  readonly settings: InstanceSettings;
  readonly report: (event: InstanceEventInit) => void;
  /** The instance reached STOPPED or FAILED and holds nothing any more. */
  readonly finished: (instance: Instance) => void;
}

export interface InstanceView {
  readonly instanceId: string;
  readonly app: string;
  readonly state: InstanceState;
  readonly reason: string;
  readonly assignedAt: Date;
  readonly exitCode: number | undefined;
  /** The instance's address on the node network; empty when it has none. */
  readonly address: string;
}

const DEFAULT_HEALTH_INTERVAL_MS = 2_000;
const DEFAULT_PROBE_TIMEOUT_MS = 1_000;
const DEFAULT_HEALTH_DEADLINE_MS = 5 * 60_000;

/** The grants an Assign brings: one the secrets service accepts, one the registry accepts. */
export interface StartGrants {
  readonly secrets: Grant | undefined;
  readonly rootfs: Grant | undefined;
}
/** Failed polls in a row before a HEALTHY instance is reported RUNNING again. */
const UNHEALTHY_STREAK = 3;
/** How long the VMM gets to power off once the workload was stopped (or the instance failed). */
const POWER_OFF_GRACE_MS = 3_000;
const SIGNAL_TIMEOUT_MS = 3_000;
/** Connect timeout for a re-adopted VM's channel: it is already up. */
const ADOPTED_CONNECT_MS = 15_000;

/** A start step failed; the message is the FAILED reason. */
class StartError extends Error {}

/** The workload process while it runs; its pid is unknown after a re-adoption until the guest replays its start. */
interface WorkloadProcess {
  readonly pid: number | undefined;
}

export class Instance {
  readonly output: OutputBuffer;
  /** Settles once the instance is STOPPED or FAILED and cleaned up. */
  readonly done: Promise<void>;

  private readonly lifecycle: InstanceLifecycle;
  private vm: VmHandle | undefined;
  private vmExit: VmExit | undefined;
  private guest: GuestLink | undefined;
  private lease: RootfsLease | undefined;
  private net: InstanceNetwork | undefined;
  /** A re-adopted instance's address before the agent restarted. */
  private previousAddress: string | undefined;
  private follower: WorkloadFollower | undefined;
  private monitor: HealthMonitor | undefined;
  /** Undefined before Run and once the workload's exit was seen (in STOPPING and RESTARTING either may hold). */
  private workload: WorkloadProcess | undefined;
  private workloadStartedAtMs: number | undefined;
  private exitWaiters: Array<() => void> = [];
  private unhealthyStreak = 0;
  private figures: GuestFigures | undefined;
  private healthDeadlineAt: number | null;
  private refreshes: Promise<void> = Promise.resolve();
  private flow: Promise<void> = Promise.resolve();
  private readonly startAbort = new AbortController();
  private readonly log: Logger;
  /** The VM's name on this host; undefined when none fits (vmNameProblem says why). */
  readonly vmName: string | undefined;
  private readonly vmNameProblem: string | undefined;
  private settle: () => void = () => undefined;

  private constructor(
    readonly id: string,
    readonly app: string,
    readonly version: number,
    readonly imageDigest: string,
    readonly cpuMillis: number,
    readonly memoryMib: number,
    readonly assignedAt: Date,
    private readonly healthIntervalMs: number,
    private readonly probeTimeoutMs: number,
    private readonly healthDeadlineMs: number,
    private readonly deps: InstanceDeps,
    adopted?: { readonly vmName: string; readonly state: InstanceState },
  ) {
    let vmName = adopted?.vmName;
    this.output = new OutputBuffer(deps.settings.logBufferBytes);
    let problem: string | undefined;
    try {
      vmName ??= vmNameFor(id, deps.vmDir);
    } catch (error) {
      problem = messageOf(error);
    }
    this.vmName = vmName;
    this.vmNameProblem = problem;
    this.log = deps.log.child({ instance: id });
    const report = (event: InstanceEventInit): void => {
      // Every event carries the address while the instance holds one; an ended instance has given it back.
      const ended = event.state === InstanceState.STOPPED || event.state === InstanceState.FAILED;
      deps.report({ ...event, address: ended ? '' : this.address });
      this.persist();
    };
    this.lifecycle =
      adopted === undefined
        ? new InstanceLifecycle({ instanceId: id, log: this.log, report })
        : new InstanceLifecycle({ instanceId: id, log: this.log, report }, 'ADOPTING', adopted.state);
    this.healthDeadlineAt = null;
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  /** A new instance from an Assign, with its grants (secrets and rootfs); its start runs in the background. */
  static assign(spec: InstanceSpec, grants: StartGrants, deps: InstanceDeps, traceContext: Readonly<Record<string, string>> = {}): Instance {
    const check = spec.healthCheck;
    const instance = new Instance(
      spec.instanceId,
      spec.app,
      spec.version,
      spec.imageDigest,
      spec.resources?.cpuMillis ?? 1000,
      spec.resources?.memoryMib ?? 256,
      new Date(),
      durationMs(check?.interval) ?? DEFAULT_HEALTH_INTERVAL_MS,
      durationMs(check?.timeout) ?? DEFAULT_PROBE_TIMEOUT_MS,
      durationMs(spec.healthDeadline) ?? DEFAULT_HEALTH_DEADLINE_MS,
      deps,
    );
    // The start joins the deploy's trace (its fetch, secret and guest calls are children of this span).
    instance.flow = withTraceCarrier(traceContext, () =>
      runInSpan('node-agent start instance', { 'shellwego.instance': spec.instanceId, 'shellwego.app': spec.app }, () => instance.start(spec, grants)),
    );
    return instance;
  }

  /** An instance whose VM an earlier agent process booted and that still runs. */
  static adopt(entry: PersistedInstance, vm: VmHandle, lease: RootfsLease | undefined, deps: InstanceDeps): Instance {
    const deadline = entry.healthDeadlineAt === null ? null : Date.parse(entry.healthDeadlineAt);
    const instance = new Instance(
      entry.instanceId,
      entry.app,
      entry.version,
      entry.imageDigest,
      entry.cpuMillis,
      entry.memoryMib,
      new Date(entry.assignedAt),
      entry.healthIntervalMs,
      DEFAULT_PROBE_TIMEOUT_MS,
      deadline === null ? DEFAULT_HEALTH_DEADLINE_MS : Math.max(0, deadline - Date.now()),
      deps,
      { vmName: vm.instanceId, state: entry.state },
    );
    instance.healthDeadlineAt = deadline;
    instance.vm = vm;
    instance.lease = lease;
    instance.previousAddress = entry.address;
    instance.flow = instance.resume();
    return instance;
  }

  /** The instance's IPv4 address on the node network (dotted quad); empty when it has none. */
  get address(): string {
    return this.net?.address ?? '';
  }

  /** The contract state the scheduler was last told. */
  get state(): InstanceState {
    return this.lifecycle.state;
  }

  get reason(): string {
    return this.lifecycle.reason;
  }

  get exitCode(): number | undefined {
    return this.lifecycle.exitCode;
  }

  /** Where the instance is in its life on this node (instance-lifecycle.ts). */
  get phase(): InstancePhase {
    return this.lifecycle.phase;
  }

  /** Not stopping, failing, ended or detached. */
  get live(): boolean {
    return this.lifecycle.live;
  }

  /** True while the start (or re-adoption) flow runs. */
  get isStarting(): boolean {
    return this.lifecycle.starting;
  }

  get workDir(): string | undefined {
    return this.vm?.workDir;
  }

  /** The reconciler found the VM gone from the driver. */
  vmVanished(): void {
    if (!this.live || this.isStarting || this.vm === undefined) return;
    void this.fail(`the VM is no longer running${this.vmExit === undefined ? '' : ` (${describeVmExit(this.vmExit)})`}${consoleTail(this.vm)}`);
  }

  /** The agent is shutting down and leaves the VM running for the next agent process. */
  detach(): void {
    if (!this.lifecycle.can('DETACHED')) return;
    this.lifecycle.transition('DETACHED');
    this.startAbort.abort();
    this.monitor?.stop();
    this.follower?.stop();
    this.guest?.close();
  }

  view(): InstanceView {
    return {
      instanceId: this.id,
      app: this.app,
      state: this.state,
      reason: this.reason,
      assignedAt: this.assignedAt,
      exitCode: this.exitCode,
      address: this.address,
    };
  }

  /** SIGTERM to the workload through the guest, `graceMs` for it to exit, then power-off and cleanup. */
  stop(graceMs: number, reason: string): Promise<void> {
    if (!this.lifecycle.can('STOPPING')) return this.done;
    this.lifecycle.transition('STOPPING', reason);
    return (async () => {
      this.startAbort.abort();
      await this.flow;
      if (this.guest !== undefined && this.workload !== undefined) {
        try {
          await this.guest.client.signal({ signal: 'SIGTERM' }, { timeoutMs: SIGNAL_TIMEOUT_MS });
          await this.workloadExit(graceMs);
        } catch (error) {
          this.log.warn({ err: ConnectError.from(error).rawMessage }, 'could not signal the workload; powering the VM off');
        }
      }
      await this.teardown();
      // Detached meanwhile: the agent is shutting down and reports nothing more; the record is gone, so the next agent's Hello does not list the instance.
      if (this.lifecycle.phase !== 'DETACHED') this.lifecycle.transition('STOPPED', reason);
      this.log.info({ reason }, 'instance stopped');
      this.finish();
    })();
  }

  /** Resolves the grant's secrets again and restarts the workload with them (InjectSecrets). */
  refresh(grant: Grant): Promise<void> {
    const next = this.refreshes.then(() => this.injectFresh(grant));
    this.refreshes = next.catch(() => undefined);
    return next;
  }

  private async start(spec: InstanceSpec, grants: StartGrants): Promise<void> {
    const signal = this.startAbort.signal;
    // A stop or detach aborts the start: no start step is reported after it.
    const advance = (to: InstancePhase): void => {
      signal.throwIfAborted();
      this.lifecycle.transition(to);
    };
    const t0 = performance.now();
    let mark = t0;
    const lap = (): number => {
      const now = performance.now();
      const ms = now - mark;
      mark = now;
      return ms;
    };
    let step = 'fetching the root filesystem';
    try {
      advance('PULLING');
      const { secrets: grant, rootfs: rootfsGrant } = grants;
      if (grant === undefined || rootfsGrant === undefined)
        throw new StartError('the assignment lacks its secrets or rootfs grant, so they cannot be fetched; the scheduler must send both');
      const lease = await this.deps.rootfs.acquire(spec.imageDigest, rootfsGrant, signal).catch((error: unknown) => {
        this.deps.metrics.rootfsFetches.inc({ outcome: 'failed' });
        throw new StartError(`cannot fetch the root filesystem of image ${spec.imageDigest}: ${messageOf(error)}`);
      });
      this.lease = lease;
      this.deps.metrics.rootfsFetches.inc({ outcome: lease.fetched ? 'fetched' : 'hit' });
      const fetchMs = lap();
      signal.throwIfAborted();

      step = 'booting the VM';
      advance('BOOTING');
      await this.attachNetwork();
      const bootStartedAt = Date.now();
      this.vm = await this.deps.driver.boot(this.vmSpec(lease.path)).catch((error: unknown) => {
        throw new StartError(`the VM did not boot: ${messageOf(error)}`);
      });
      const bootMs = lap();
      this.watchVm(this.vm);
      this.persist();
      // The record must be on disk before anything runs in the VM (a restarted agent adopts it);
      // it is written while the guest boots.
      const recorded = this.deps.store.flush();
      signal.throwIfAborted();

      step = 'waiting for the guest agent';
      this.guest = new GuestLink(this.vm.channel, this.deps.settings.bootTimeoutMs);
      await this.guestReady(this.vm, this.guest, bootStartedAt + this.deps.settings.bootTimeoutMs, signal);
      const readyMs = lap();
      this.deps.metrics.bootSeconds.observe((bootMs + readyMs) / 1000);
      await recorded;
      const recordMs = lap();

      step = 'resolving secrets';
      advance('STARTING');
      const secrets = await resolveSecrets(this.deps.secrets(), grant, spec.secretNames).catch((error: unknown) => {
        throw new StartError(`cannot resolve the secrets ${spec.secretNames.join(', ')}: ${messageOf(error)}`);
      });
      const secretsMs = lap();

      step = 'starting the workload';
      const run = await this.runWorkload(spec, secrets, signal);
      const runMs = lap();
      this.workload = { pid: run };
      this.workloadStartedAtMs = Date.now();
      this.healthDeadlineAt = Date.now() + this.healthDeadlineMs;
      // Followed before RUNNING: a stop that comes first still sees the workload's exit.
      const guest = this.guest;
      outsideTrace(() => this.followWorkload(guest));
      advance('RUNNING');
      const totalMs = performance.now() - t0;
      this.deps.metrics.startSeconds.observe(totalMs / 1000);
      this.log.info(
        {
          pid: run,
          rootfs: lease.fetched ? 'fetched' : 'cached',
          fetchMs: round(fetchMs),
          bootMs: round(bootMs),
          readyMs: round(readyMs),
          recordMs: round(recordMs),
          secretsMs: round(secretsMs),
          runMs: round(runMs),
          agentMs: round(totalMs - fetchMs - bootMs - readyMs),
          totalMs: round(totalMs),
        },
        'workload started',
      );
      outsideTrace(() => this.monitorHealth(guest));
    } catch (error) {
      // Stopped or detached: the start was aborted on purpose.
      if (!this.live) return;
      let reason = error instanceof StartError ? error.message : `unexpected error while ${step}: ${messageOf(error)}`;
      if (this.vmExit !== undefined && this.vm !== undefined && !(error instanceof StartError && reason.startsWith('the VM exited'))) {
        reason = `the VM exited (${describeVmExit(this.vmExit)}) while ${step}${consoleTail(this.vm)}`;
      }
      await this.fail(reason);
    } finally {
      this.startFinished();
    }
  }

  /** The VM watcher leaves an exit during a start to the start; one right at its end is handled here. */
  private startFinished(): void {
    const vm = this.vm;
    if (vm !== undefined && this.vmExit !== undefined && this.live) {
      void this.fail(`the VM exited unexpectedly (${describeVmExit(this.vmExit)})${consoleTail(vm)}`);
    }
  }

  private vmSpec(rootfsPath: string) {
    const kind = this.deps.driver.kind;
    const vmName = this.vmName;
    if (vmName === undefined) throw new StartError(`the VM cannot be named: ${this.vmNameProblem ?? 'unknown problem'}`);
    return {
      instanceId: vmName,
      vcpus: vcpusForCpuMillis(this.cpuMillis),
      cpuMillis: this.cpuMillis,
      // A VM needs room for the guest image itself; the scheduler's reservation stays as asked.
      memoryMib: kind === 'process' ? this.memoryMib : Math.max(this.memoryMib, DEFAULT_MIN_VM_MEMORY_MIB),
      rootfsPath,
      ...(this.deps.guestImage === undefined ? {} : { guestImage: this.deps.guestImage }),
      workDir: `${this.deps.vmDir}/${vmName}`,
      ...(this.net === undefined ? {} : { network: this.net.vm }),
    };
  }

  /** A TAP device and an address on the node network, for VMs (the process driver has no NIC to give one). */
  private async attachNetwork(previousAddress?: string): Promise<void> {
    const network = this.deps.network;
    if (network === undefined || this.deps.driver.kind === 'process') return;
    this.net = await network.attach(this.id, this.app, previousAddress).catch((error: unknown) => {
      throw new StartError(`the VM network could not be set up: ${messageOf(error)}`);
    });
  }

  private async guestReady(vm: VmHandle, guest: GuestLink, deadlineMs: number, signal: AbortSignal): Promise<void> {
    const stopWaiting = new AbortController();
    const exited = vm.exited.then((exit) => ({ kind: 'exited' as const, exit }));
    const ready = guest.waitReady(deadlineMs, AbortSignal.any([signal, stopWaiting.signal])).then(
      () => ({ kind: 'ready' as const }),
      (error: unknown) => ({ kind: 'error' as const, error }),
    );
    const first = await Promise.race([exited, ready]);
    stopWaiting.abort();
    if (first.kind === 'ready') return;
    if (first.kind === 'exited') {
      throw new StartError(`the VM exited (${describeVmExit(first.exit)}) before its guest agent answered${consoleTail(vm)}`);
    }
    signal.throwIfAborted();
    const seconds = Math.round(this.deps.settings.bootTimeoutMs / 1000);
    throw new StartError(`the guest agent did not answer within ${seconds} s of the VM starting (${messageOf(first.error)})${consoleTail(vm)}`);
  }

  /** Run with the secrets, which are wiped whatever happens; returns the workload's pid. */
  private async runWorkload(spec: InstanceSpec, secrets: Map<string, SecretBytes>, signal: AbortSignal): Promise<number> {
    const guest = this.guest as GuestLink;
    const config = spec.imageConfig;
    try {
      signal.throwIfAborted();
      const env: Record<string, string> = {};
      // The image's defaults, unless a secret of the same name replaces them; explicit env wins over both.
      for (const entry of config?.env ?? []) {
        const eq = entry.indexOf('=');
        const name = eq < 0 ? entry : entry.slice(0, eq);
        if (name !== '' && !secrets.has(name)) env[name] = eq < 0 ? '' : entry.slice(eq + 1);
      }
      Object.assign(env, spec.env);
      const response = await guest.client.run(
        create(RunRequestSchema, {
          argv: spec.argv,
          env,
          secretEnv: secretEnv(secrets),
          workdir: config?.workingDir ?? '',
          user: config?.user ?? '',
          ...(spec.healthCheck === undefined ? {} : { healthCheck: spec.healthCheck }),
          rootfsDevice: this.deps.driver.kind === 'process' ? '' : '/dev/vda',
          ...(this.net === undefined
            ? {}
            : {
                network: create(GuestNetworkSchema, {
                  interface: 'eth0',
                  addressCidr: this.net.addressCidr,
                  gateway: this.net.gateway,
                  dnsServers: [...this.net.dnsServers],
                  mtu: this.net.mtu,
                }),
              }),
        }),
        { timeoutMs: this.deps.settings.runTimeoutMs, signal },
      );
      if (secrets.size > 0) this.deps.metrics.secretPushes.inc({ kind: 'run', outcome: 'ok' });
      return response.pid;
    } catch (error) {
      if (secrets.size > 0) this.deps.metrics.secretPushes.inc({ kind: 'run', outcome: 'failed' });
      signal.throwIfAborted();
      throw new StartError(`the workload could not be started: ${messageOf(error)}`);
    } finally {
      wipeAll(secrets);
    }
  }

  /** After an agent restart: follow the workload again, or give up on a start that was cut short. */
  private async resume(): Promise<void> {
    const vm = this.vm as VmHandle;
    try {
      if (this.previousAddress !== undefined) {
        // The VM still holds its TAP device and address: take them over again.
        await this.attachNetwork(this.previousAddress).catch((error: unknown) =>
          this.log.error({ err: messageOf(error) }, 'could not re-attach the instance network'),
        );
      }
      this.guest = new GuestLink(vm.channel, ADOPTED_CONNECT_MS);
      this.watchVm(vm);
      const resumed = phaseOf(this.state);
      if (resumed !== 'RUNNING' && resumed !== 'HEALTHY') {
        await this.fail(`the node agent restarted while the instance was ${InstanceState[this.state] ?? 'starting'}; its start cannot be resumed`);
        return;
      }
      // The state the scheduler already knows: resuming into it reports nothing.
      this.lifecycle.transition(resumed);
      this.workload = { pid: undefined };
      this.followWorkload(this.guest);
      this.monitorHealth(this.guest);
      this.log.info({ state: InstanceState[this.state], vm: vm.detail }, 'instance re-adopted');
    } finally {
      this.startFinished();
    }
  }

  private watchVm(vm: VmHandle): void {
    void vm.exited.then((exit) => {
      this.vmExit = exit;
      if (!this.live || this.isStarting) return;
      void this.fail(`the VM exited unexpectedly (${describeVmExit(exit)})${consoleTail(vm)}`);
    });
  }

  private followWorkload(guest: GuestLink): void {
    this.follower = new WorkloadFollower(guest.client, this.output, {
      onStarted: (pid) => {
        this.workload = { pid };
      },
      onExited: (exit) => this.onWorkloadExit(exit),
      onStreamError: (error) => {
        if (this.live) this.log.debug({ err: messageOf(error) }, 'Wait stream broke; reopening');
      },
    });
    this.follower.start();
  }

  private onWorkloadExit(exit: ProcessExited): void {
    if (this.workload === undefined || exit.pid !== this.workload.pid) return;
    this.workload = undefined;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const wake of waiters) wake();
    // Expected while stopping or restarting; a start that has not reached RUNNING fails on its own.
    if (!this.lifecycle.serving) return;
    const how = exit.exitCode !== undefined ? `with code ${exit.exitCode}` : `on signal ${exit.signal || 'unknown'}`;
    const after = this.workloadStartedAtMs === undefined ? '' : ` ${((Date.now() - this.workloadStartedAtMs) / 1000).toFixed(1)} s after it started`;
    void this.fail(`the workload exited ${how}${after}; its output: \`shellwego logs ${this.id}\``, exit.exitCode);
  }

  /** What the guest last measured of itself (Health), for the node's metrics; undefined before its first answer. */
  get guestFigures(): GuestFigures | undefined {
    return this.figures;
  }

  private monitorHealth(guest: GuestLink): void {
    this.monitor = new HealthMonitor(guest.client, {
      intervalMs: this.healthIntervalMs,
      probeTimeoutMs: this.probeTimeoutMs,
      onOutcome: (outcome) => this.onHealth(outcome),
    });
    this.monitor.start();
  }

  /** Returns whether polling may slow down (the workload has been healthy). */
  private onHealth(outcome: HealthOutcome): boolean {
    if (outcome.ok && outcome.report.figures !== undefined) this.figures = outcome.report.figures;
    if (!this.lifecycle.serving) return false;
    const healthy = outcome.ok && outcome.report.healthy;
    const detail = outcome.ok ? outcome.report.detail : `the guest agent did not answer Health: ${outcome.error}`;
    if (healthy) {
      this.unhealthyStreak = 0;
      if (this.lifecycle.phase === 'RUNNING') {
        this.healthDeadlineAt = null;
        this.lifecycle.transition('HEALTHY', detail);
        const sinceStart = this.workloadStartedAtMs === undefined ? undefined : Date.now() - this.workloadStartedAtMs;
        this.log.info(
          { sinceAssignMs: Date.now() - this.assignedAt.getTime(), ...(sinceStart === undefined ? {} : { sinceStartMs: sinceStart }) },
          'instance healthy',
        );
      }
      return true;
    }
    // An exit is reported through Wait, with its exit code.
    if (outcome.ok && !outcome.report.workloadRunning) return false;
    if (this.lifecycle.phase === 'HEALTHY') {
      this.unhealthyStreak += 1;
      if (this.unhealthyStreak >= UNHEALTHY_STREAK) this.lifecycle.transition('RUNNING', `health check failing: ${detail}`);
    } else if (this.lifecycle.phase === 'RUNNING') {
      if (this.healthDeadlineAt !== null && Date.now() > this.healthDeadlineAt) {
        void this.fail(`the health check did not pass within ${Math.round(this.healthDeadlineMs / 1000)} s of the workload starting: ${detail}`);
      } else {
        // Seen before the deadline, reported only when the text changes.
        this.lifecycle.noteRunning(`health check failing: ${detail}`);
      }
    }
    return this.lifecycle.phase === 'HEALTHY';
  }

  private async injectFresh(grant: Grant): Promise<void> {
    const guest = this.guest;
    if (guest === undefined || !this.lifecycle.serving) {
      this.refreshIgnored();
      return;
    }
    let secrets: Map<string, SecretBytes>;
    try {
      secrets = await resolveSecrets(this.deps.secrets(), grant, fromBinary(GrantClaimsSchema, grant.claims).secretNames);
    } catch (error) {
      this.deps.metrics.secretPushes.inc({ kind: 'refresh', outcome: 'failed' });
      this.log.warn({ err: messageOf(error) }, 'secret refresh failed; the workload keeps running with its current values');
      return;
    }
    // Stopped or failed while the secrets were resolved: nothing to restart.
    if (!this.lifecycle.serving) {
      wipeAll(secrets);
      this.refreshIgnored();
      return;
    }
    this.lifecycle.transition('RESTARTING');
    let pid: number;
    try {
      const response = await guest.client.injectSecrets(create(InjectSecretsRequestSchema, { secretEnv: secretEnv(secrets) }), {
        timeoutMs: this.deps.settings.runTimeoutMs,
      });
      pid = response.pid;
      this.workload = { pid };
      this.workloadStartedAtMs = Date.now();
      this.deps.metrics.secretPushes.inc({ kind: 'refresh', outcome: 'ok' });
    } catch (error) {
      this.deps.metrics.secretPushes.inc({ kind: 'refresh', outcome: 'failed' });
      await this.fail(`the workload did not restart with refreshed secrets: ${messageOf(error)}`);
      return;
    } finally {
      wipeAll(secrets);
    }
    this.unhealthyStreak = 0;
    this.healthDeadlineAt = Date.now() + this.healthDeadlineMs;
    this.log.info({ pid, secrets: secrets.size }, 'workload restarted with refreshed secrets');
    // RUNNING until the new workload passes its health check (reported only if it was HEALTHY).
    if (this.lifecycle.phase === 'RESTARTING') this.lifecycle.transition('RUNNING', 'restarted with refreshed secrets');
  }

  private refreshIgnored(): void {
    this.log.info({ state: InstanceState[this.state] }, 'secret refresh ignored: the workload is not running (a start resolves the current values itself)');
  }

  private fail(reason: string, exitCode?: number): Promise<void> {
    if (!this.lifecycle.can('FAILING')) return this.done;
    this.lifecycle.transition('FAILING', reason);
    this.startAbort.abort();
    return (async () => {
      this.log.warn({ reason }, 'instance failed');
      await this.teardown();
      // Detached meanwhile: the agent is shutting down and reports nothing more; the record is gone, so the next agent's Hello does not list the instance.
      if (this.lifecycle.phase !== 'DETACHED') this.lifecycle.transition('FAILED', reason, exitCode);
      this.finish();
    })();
  }

  /** Powers the VM off and removes everything the instance had on this host. */
  private async teardown(): Promise<void> {
    this.monitor?.stop();
    this.follower?.stop();
    this.guest?.close();
    const vm = this.vm;
    if (vm !== undefined) {
      try {
        await this.deps.driver.stop(vm, { graceMs: POWER_OFF_GRACE_MS });
      } catch (error) {
        this.deps.metrics.reconcileErrors.inc();
        this.log.error({ err: messageOf(error) }, 'could not stop the VM; the reconciler tries again');
      }
    }
    if (this.net !== undefined) {
      try {
        await this.deps.network?.detach(this.id);
        this.net = undefined;
      } catch (error) {
        this.deps.metrics.reconcileErrors.inc();
        this.log.error({ err: messageOf(error) }, 'could not remove the instance network');
      }
    }
    this.deps.store.remove(this.id);
    // STOPPED and FAILED promise that nothing of the instance is left, its record included.
    await this.deps.store.flush();
    void this.lease?.release();
    this.lease = undefined;
    this.output.end();
  }

  private finish(): void {
    this.settle();
    this.deps.finished(this);
  }

  private workloadExit(timeoutMs: number): Promise<void> {
    if (this.workload === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private persist(): void {
    const vm = this.vm;
    if (vm === undefined || this.state === InstanceState.STOPPED || this.state === InstanceState.FAILED) return;
    this.deps.store.put({
      instanceId: this.id,
      app: this.app,
      version: this.version,
      imageDigest: this.imageDigest,
      cpuMillis: this.cpuMillis,
      memoryMib: this.memoryMib,
      state: this.state,
      assignedAt: this.assignedAt.toISOString(),
      healthIntervalMs: this.healthIntervalMs,
      healthDeadlineAt: this.healthDeadlineAt === null ? null : new Date(this.healthDeadlineAt).toISOString(),
      vm: vmRecordOf(vm),
      ...(this.net === undefined ? {} : { address: this.net.address }),
    });
  }
}

function durationMs(duration: { seconds: bigint; nanos: number } | undefined): number | undefined {
  if (duration === undefined) return undefined;
  const ms = Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
  return ms > 0 ? ms : undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof ConnectError) return error.rawMessage;
  return error instanceof Error ? error.message : String(error);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
