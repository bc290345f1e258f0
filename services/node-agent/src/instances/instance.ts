// One instance on this node, from its assignment (or its re-adoption after an agent restart) to
// STOPPED or FAILED: rootfs -> VM -> guest agent -> secrets -> Run -> health, every transition an
// event; stop (SIGTERM through the guest, grace, power-off, files removed); secret refreshes.
// Secrets exist here only between ResolveSecrets and the Run / InjectSecrets call, then are wiped.
import { create, fromBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { type Client, ConnectError } from '@connectrpc/connect';
import { type Grant, GrantClaimsSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { InjectSecretsRequestSchema, type ProcessExited, RunRequestSchema } from '@shellwego/contracts/guest/v1/guest_pb';
import type { InstanceSpec } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { Logger } from '@shellwego/kit/log';
import { type SecretBytes, wipeAll } from '@shellwego/kit/secret-bytes';
import { DEFAULT_MIN_VM_MEMORY_MIB, type GuestImage, type VmDriver, type VmExit, type VmHandle, vcpusForCpuMillis, vmRecordOf } from '../drivers/index.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { RootfsCache, RootfsLease } from '../rootfs/rootfs-cache.js';
import type { InstanceEventInit } from '../session/scheduler-session.js';
import { GuestLink } from './guest-link.js';
import { HealthMonitor, type HealthOutcome } from './health-monitor.js';
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
}

const DEFAULT_HEALTH_INTERVAL_MS = 2_000;
const DEFAULT_PROBE_TIMEOUT_MS = 1_000;
const DEFAULT_HEALTH_DEADLINE_MS = 5 * 60_000;
/** Failed polls in a row before a HEALTHY instance is reported RUNNING again. */
const UNHEALTHY_STREAK = 3;
/** How long the VMM gets to power off once the workload was stopped (or the instance failed). */
const POWER_OFF_GRACE_MS = 3_000;
const SIGNAL_TIMEOUT_MS = 3_000;
/** Connect timeout for a re-adopted VM's channel: it is already up. */
const ADOPTED_CONNECT_MS = 15_000;

const LIVE_WORKLOAD = new Set([InstanceState.RUNNING, InstanceState.HEALTHY]);

/** A start step failed; the message is the FAILED reason. */
class StartError extends Error {}

export class Instance {
  readonly output: OutputBuffer;
  state = InstanceState.ASSIGNED;
  reason = '';
  exitCode: number | undefined;
  /** Settles once the instance is STOPPED or FAILED and cleaned up. */
  readonly done: Promise<void>;

  private vm: VmHandle | undefined;
  private vmExit: VmExit | undefined;
  private guest: GuestLink | undefined;
  private lease: RootfsLease | undefined;
  private follower: WorkloadFollower | undefined;
  private monitor: HealthMonitor | undefined;
  private workloadPid: number | undefined;
  private workloadRunning = false;
  private workloadStartedAtMs: number | undefined;
  private exitWaiters: Array<() => void> = [];
  private replacing = false;
  private starting = false;
  private ending: 'stop' | 'fail' | undefined;
  private ended: Promise<void> | undefined;
  private unhealthyStreak = 0;
  private healthDeadlineAt: number | null;
  private refreshes: Promise<void> = Promise.resolve();
  private flow: Promise<void> = Promise.resolve();
  private readonly startAbort = new AbortController();
  private readonly log: Logger;
  private detached = false;
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
    vmName?: string,
  ) {
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
    this.healthDeadlineAt = null;
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  /** A new instance from an Assign; its start runs in the background. */
  static assign(spec: InstanceSpec, grant: Grant | undefined, deps: InstanceDeps): Instance {
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
    instance.flow = instance.start(spec, grant);
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
      vm.instanceId,
    );
    instance.state = entry.state;
    instance.healthDeadlineAt = deadline;
    instance.vm = vm;
    instance.lease = lease;
    instance.flow = instance.resume();
    return instance;
  }

  get live(): boolean {
    return this.ending === undefined && !this.detached;
  }

  /** True while the start (or re-adoption) flow runs. */
  get isStarting(): boolean {
    return this.starting;
  }

  get workDir(): string | undefined {
    return this.vm?.workDir;
  }

  /** The reconciler found the VM gone from the driver. */
  vmVanished(): void {
    if (!this.live || this.starting || this.vm === undefined) return;
    void this.fail(`the VM is no longer running${this.vmExit === undefined ? '' : ` (${describeVmExit(this.vmExit)})`}${consoleTail(this.vm)}`);
  }

  /** The agent is shutting down and leaves the VM running for the next agent process. */
  detach(): void {
    this.detached = true;
    this.startAbort.abort();
    this.monitor?.stop();
    this.follower?.stop();
    this.guest?.close();
  }

  view(): InstanceView {
    return { instanceId: this.id, app: this.app, state: this.state, reason: this.reason, assignedAt: this.assignedAt, exitCode: this.exitCode };
  }

  /** SIGTERM to the workload through the guest, `graceMs` for it to exit, then power-off and cleanup. */
  stop(graceMs: number, reason: string): Promise<void> {
    if (this.ending !== undefined) return this.done;
    this.ending = 'stop';
    this.ended = (async () => {
      this.transition(InstanceState.STOPPING, reason);
      this.startAbort.abort();
      await this.flow;
      if (this.guest !== undefined && this.workloadRunning) {
        try {
          await this.guest.client.signal({ signal: 'SIGTERM' }, { timeoutMs: SIGNAL_TIMEOUT_MS });
          await this.workloadExit(graceMs);
        } catch (error) {
          this.log.warn({ err: ConnectError.from(error).rawMessage }, 'could not signal the workload; powering the VM off');
        }
      }
      await this.teardown();
      this.transition(InstanceState.STOPPED, reason);
      this.log.info({ reason }, 'instance stopped');
      this.finish();
    })();
    return this.ended;
  }

  /** Resolves the grant's secrets again and restarts the workload with them (InjectSecrets). */
  refresh(grant: Grant): Promise<void> {
    const next = this.refreshes.then(() => this.injectFresh(grant));
    this.refreshes = next.catch(() => undefined);
    return next;
  }

  private async start(spec: InstanceSpec, grant: Grant | undefined): Promise<void> {
    this.starting = true;
    const signal = this.startAbort.signal;
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
      this.transition(InstanceState.PULLING);
      if (grant === undefined)
        throw new StartError('the assignment carries no grant, so the rootfs and secrets cannot be fetched; the scheduler must send one');
      const lease = await this.deps.rootfs.acquire(spec.imageDigest, grant, signal).catch((error: unknown) => {
        this.deps.metrics.rootfsFetches.inc({ outcome: 'failed' });
        throw new StartError(`cannot fetch the root filesystem of image ${spec.imageDigest}: ${messageOf(error)}`);
      });
      this.lease = lease;
      this.deps.metrics.rootfsFetches.inc({ outcome: lease.fetched ? 'fetched' : 'hit' });
      const fetchMs = lap();
      signal.throwIfAborted();

      step = 'booting the VM';
      this.transition(InstanceState.BOOTING);
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
      this.transition(InstanceState.STARTING);
      const secrets = await resolveSecrets(this.deps.secrets(), grant, spec.secretNames).catch((error: unknown) => {
        throw new StartError(`cannot resolve the secrets ${spec.secretNames.join(', ')}: ${messageOf(error)}`);
      });
      const secretsMs = lap();

      step = 'starting the workload';
      const run = await this.runWorkload(spec, secrets, signal);
      const runMs = lap();
      this.workloadPid = run;
      this.workloadRunning = true;
      this.workloadStartedAtMs = Date.now();
      this.healthDeadlineAt = Date.now() + this.healthDeadlineMs;
      this.followWorkload(this.guest);
      this.transition(InstanceState.RUNNING);
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
      this.monitorHealth(this.guest);
    } catch (error) {
      if (this.ending === 'stop') return;
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
    this.starting = false;
    const vm = this.vm;
    if (vm !== undefined && this.vmExit !== undefined && this.ending === undefined) {
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
      // A VM needs room for the guest image itself; the scheduler's reservation stays as asked.
      memoryMib: kind === 'process' ? this.memoryMib : Math.max(this.memoryMib, DEFAULT_MIN_VM_MEMORY_MIB),
      rootfsPath,
      ...(this.deps.guestImage === undefined ? {} : { guestImage: this.deps.guestImage }),
      workDir: `${this.deps.vmDir}/${vmName}`,
    };
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
    this.starting = true;
    try {
      this.guest = new GuestLink(vm.channel, ADOPTED_CONNECT_MS);
      this.watchVm(vm);
      if (!LIVE_WORKLOAD.has(this.state)) {
        await this.fail(`the node agent restarted while the instance was ${InstanceState[this.state] ?? 'starting'}; its start cannot be resumed`);
        return;
      }
      this.workloadRunning = true;
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
      if (this.ending !== undefined || this.starting) return;
      void this.fail(`the VM exited unexpectedly (${describeVmExit(exit)})${consoleTail(vm)}`);
    });
  }

  private followWorkload(guest: GuestLink): void {
    this.follower = new WorkloadFollower(guest.client, this.output, {
      onStarted: (pid) => {
        this.workloadPid = pid;
        this.workloadRunning = true;
      },
      onExited: (exit) => this.onWorkloadExit(exit),
      onStreamError: (error) => {
        if (this.ending === undefined) this.log.debug({ err: messageOf(error) }, 'Wait stream broke; reopening');
      },
    });
    this.follower.start();
  }

  private onWorkloadExit(exit: ProcessExited): void {
    if (exit.pid !== this.workloadPid) return;
    this.workloadRunning = false;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const wake of waiters) wake();
    if (this.ending !== undefined || this.replacing || !LIVE_WORKLOAD.has(this.state)) return;
    const how = exit.exitCode !== undefined ? `with code ${exit.exitCode}` : `on signal ${exit.signal || 'unknown'}`;
    const after = this.workloadStartedAtMs === undefined ? '' : ` ${((Date.now() - this.workloadStartedAtMs) / 1000).toFixed(1)} s after it started`;
    void this.fail(`the workload exited ${how}${after}; its output: \`shellwego logs ${this.id}\``, exit.exitCode);
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
    if (this.ending !== undefined || this.replacing) return false;
    const healthy = outcome.ok && outcome.report.healthy;
    const detail = outcome.ok ? outcome.report.detail : `the guest agent did not answer Health: ${outcome.error}`;
    if (healthy) {
      this.unhealthyStreak = 0;
      if (this.state === InstanceState.RUNNING) {
        this.healthDeadlineAt = null;
        this.transition(InstanceState.HEALTHY, detail);
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
    if (this.state === InstanceState.HEALTHY) {
      this.unhealthyStreak += 1;
      if (this.unhealthyStreak >= UNHEALTHY_STREAK) this.transition(InstanceState.RUNNING, `health check failing: ${detail}`);
    } else if (this.state === InstanceState.RUNNING && this.healthDeadlineAt !== null && Date.now() > this.healthDeadlineAt) {
      void this.fail(`the health check did not pass within ${Math.round(this.healthDeadlineMs / 1000)} s of the workload starting: ${detail}`);
    }
    return this.state === InstanceState.HEALTHY;
  }

  private async injectFresh(grant: Grant): Promise<void> {
    const guest = this.guest;
    if (this.ending !== undefined || guest === undefined || !LIVE_WORKLOAD.has(this.state)) {
      this.log.info({ state: InstanceState[this.state] }, 'secret refresh ignored: the workload is not running (a start resolves the current values itself)');
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
    this.replacing = true;
    try {
      const response = await guest.client.injectSecrets(create(InjectSecretsRequestSchema, { secretEnv: secretEnv(secrets) }), {
        timeoutMs: this.deps.settings.runTimeoutMs,
      });
      this.workloadPid = response.pid;
      this.workloadRunning = true;
      this.workloadStartedAtMs = Date.now();
      this.deps.metrics.secretPushes.inc({ kind: 'refresh', outcome: 'ok' });
    } catch (error) {
      this.deps.metrics.secretPushes.inc({ kind: 'refresh', outcome: 'failed' });
      this.replacing = false;
      await this.fail(`the workload did not restart with refreshed secrets: ${messageOf(error)}`);
      return;
    } finally {
      wipeAll(secrets);
    }
    this.replacing = false;
    this.unhealthyStreak = 0;
    this.healthDeadlineAt = Date.now() + this.healthDeadlineMs;
    this.log.info({ pid: this.workloadPid, secrets: secrets.size }, 'workload restarted with refreshed secrets');
    if (this.state === InstanceState.HEALTHY && this.ending === undefined) this.transition(InstanceState.RUNNING, 'restarted with refreshed secrets');
  }

  private fail(reason: string, exitCode?: number): Promise<void> {
    if (this.ending !== undefined || this.detached) return this.done;
    this.ending = 'fail';
    this.startAbort.abort();
    this.ended = (async () => {
      this.log.warn({ reason }, 'instance failed');
      await this.teardown();
      this.transition(InstanceState.FAILED, reason, exitCode);
      this.finish();
    })();
    return this.ended;
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
    if (!this.workloadRunning) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private transition(state: InstanceState, reason = '', exitCode?: number): void {
    if (this.detached) return;
    this.state = state;
    this.reason = reason;
    if (exitCode !== undefined) this.exitCode = exitCode;
    this.deps.report({ instanceId: this.id, state, time: timestampNow(), reason, ...(exitCode === undefined ? {} : { exitCode }) });
    this.persist();
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
