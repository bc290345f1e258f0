// Desired instances (from the Session: Assign, Stop, RefreshSecrets) against actual VMs (from the
// driver). Every order is idempotent: a repeated Assign is ignored, a Stop for an instance this
// node does not run is answered STOPPED, an Assign for one that just ended repeats how it ended.
// A periodic pass fails instances whose VM vanished and stops VMs no instance owns.
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Assign, RefreshSecrets, SessionResponse, Stop } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { NodeNetwork } from '../network/node-network.js';
import { Instance, type InstanceDeps, type InstanceView } from './instance.js';
import { sweepOrphanWorkDirs } from './orphan-sweep.js';
import type { OutputBuffer } from './output-buffer.js';

/** How long (and how many) ended instances are remembered, with the tail of their output. */
const FINISHED_TTL_MS = 15 * 60_000;
const FINISHED_MAX = 100;
const FINISHED_OUTPUT_BYTES = 32 * 1024;
const DEFAULT_STOP_GRACE_MS = 10_000;
const SHUTDOWN_STOP_GRACE_MS = 5_000;

export interface ReconcilerDeps extends Omit<InstanceDeps, 'finished'> {
  readonly reconcileIntervalMs: number;
}

interface Finished {
  readonly view: InstanceView;
  readonly output: OutputBuffer | undefined;
  readonly at: number;
}

export interface InstanceRecordView {
  readonly view: InstanceView;
  readonly output: OutputBuffer | undefined;
}

export class Reconciler {
  private readonly instances = new Map<string, Instance>();
  private readonly finished = new Map<string, Finished>();
  private readonly instanceDeps: InstanceDeps;
  private timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private closing = false;

  constructor(private readonly deps: ReconcilerDeps) {
    this.instanceDeps = { ...deps, finished: (instance) => this.onFinished(instance) };
  }

  /** The node network opened after start (its subnet came from the scheduler): instances assigned from now on get an interface. */
  useNetwork(network: NodeNetwork): void {
    this.instanceDeps.network = network;
  }

  /**
   * Re-adopts the VMs an earlier agent process recorded. Instances whose VM is gone are FAILED
   * (reported on the next Session); work dirs and cgroups no instance owns are swept.
   */
  async adoptAll(): Promise<void> {
    const { store, driver, log } = this.deps;
    const loaded = await store.load();
    for (const problem of loaded.problems) {
      this.deps.metrics.reconcileErrors.inc();
      log.warn(problem);
    }
    for (const entry of loaded.instances) {
      let reason: string | undefined;
      if (entry.vm.driver !== driver.kind) {
        reason = `the node agent now runs the ${driver.kind} driver and cannot adopt this ${entry.vm.driver} VM (pid ${entry.vm.pid}); stop that process by hand`;
      } else {
        try {
          const adopted = await driver.adopt(entry.vm);
          if (adopted.kind === 'adopted') {
            if (entry.address !== undefined) this.deps.network?.reserve(entry.instanceId, entry.app, entry.address);
            const instance = Instance.adopt(entry, adopted.handle, this.deps.rootfs.hold(entry.imageDigest), this.instanceDeps);
            this.instances.set(instance.id, instance);
            continue;
          }
          reason = `the VM ended while the node agent was not running (${adopted.reason})`;
        } catch (error) {
          this.deps.metrics.reconcileErrors.inc();
          reason = `the VM could not be re-adopted: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
      store.remove(entry.instanceId);
      // Its VM is gone; a TAP device it had would be left behind otherwise.
      await this.deps.network
        ?.detach(entry.instanceId)
        .catch((error: unknown) => log.error({ instance: entry.instanceId, err: String(error) }, 'could not remove the lost instance network'));
      log.warn({ instance: entry.instanceId, reason }, 'instance lost across the agent restart');
      this.remember(
        {
          instanceId: entry.instanceId,
          app: entry.app,
          state: InstanceState.FAILED,
          reason,
          assignedAt: new Date(entry.assignedAt),
          exitCode: undefined,
          address: '',
        },
        undefined,
      );
      this.deps.report({ instanceId: entry.instanceId, state: InstanceState.FAILED, time: timestampNow(), reason });
    }
    await store.flush();
    const owned = new Set([...this.instances.values()].map((i) => i.workDir).filter((d): d is string => d !== undefined));
    for (const swept of await sweepOrphanWorkDirs(this.deps.vmDir, owned)) {
      log.warn({ dir: swept.dir, killed: swept.killed }, 'removed a VM work dir no instance owns (an interrupted boot)');
    }
    // Rules for exactly the adopted instances, in one step; TAP devices of instances that are gone go.
    await this.deps.network?.completeAdoption();
    await driver.sweepOrphans().catch((error: unknown) => {
      this.deps.metrics.reconcileErrors.inc();
      log.error({ err: String(error) }, 'could not remove the cgroups no VM owns');
    });
    if (this.instances.size > 0) log.info({ instances: [...this.instances.keys()] }, 're-adopted running instances');
  }

  start(): void {
    this.timer = setInterval(() => void this.reconcile(), this.deps.reconcileIntervalMs);
    this.timer.unref();
  }

  handle(message: SessionResponse): void {
    if (this.closing) return;
    const msg = message.msg;
    switch (msg.case) {
      case 'assign':
        this.assign(msg.value);
        return;
      case 'stop':
        this.stop(msg.value);
        return;
      case 'refreshSecrets':
        this.refresh(msg.value);
        return;
      default:
        this.deps.log.warn('ignored an empty or unknown message from the scheduler');
    }
  }

  assign(assign: Assign): void {
    const spec = assign.spec;
    if (spec === undefined || spec.instanceId === '') {
      this.deps.log.warn('ignored an assignment without an instance spec');
      return;
    }
    if (this.instances.has(spec.instanceId)) {
      this.deps.log.debug({ instance: spec.instanceId }, 'assignment repeated; the instance already runs here');
      return;
    }
    const ended = this.finished.get(spec.instanceId);
    if (ended !== undefined) {
      this.deps.log.info(
        { instance: spec.instanceId, state: InstanceState[ended.view.state] },
        'assignment for an instance that already ended here; reporting how it ended',
      );
      this.deps.report({
        instanceId: spec.instanceId,
        state: ended.view.state,
        time: timestampNow(),
        reason: ended.view.reason,
        ...(ended.view.exitCode === undefined ? {} : { exitCode: ended.view.exitCode }),
      });
      return;
    }
    this.deps.log.info({ instance: spec.instanceId, app: spec.app, version: spec.version, image: spec.imageDigest }, 'assignment received');
    this.instances.set(spec.instanceId, Instance.assign(spec, { secrets: assign.grant, rootfs: assign.rootfsGrant }, this.instanceDeps, assign.traceContext));
  }

  stop(stop: Stop): void {
    const instance = this.instances.get(stop.instanceId);
    const graceMs = stop.gracePeriod === undefined ? DEFAULT_STOP_GRACE_MS : Number(stop.gracePeriod.seconds) * 1000 + Math.floor(stop.gracePeriod.nanos / 1e6);
    if (instance !== undefined) {
      this.deps.log.info({ instance: stop.instanceId, graceMs, reason: stop.reason }, 'stop order received');
      void instance.stop(graceMs, stop.reason);
      return;
    }
    const ended = this.finished.get(stop.instanceId);
    this.deps.report({
      instanceId: stop.instanceId,
      state: ended?.view.state ?? InstanceState.STOPPED,
      time: timestampNow(),
      reason: ended?.view.reason ?? `not running on this node (${stop.reason || 'stop order'})`,
    });
  }

  refresh(refresh: RefreshSecrets): void {
    const instance = this.instances.get(refresh.instanceId);
    if (instance === undefined || refresh.grant === undefined) {
      this.deps.log.warn({ instance: refresh.instanceId }, 'secret refresh ignored: the instance does not run here or the order has no grant');
      return;
    }
    this.deps.log.info({ instance: refresh.instanceId }, 'secret refresh received');
    void instance.refresh(refresh.grant);
  }

  /** What Hello reports: every instance this node holds that has not ended. */
  running(): { instanceId: string; state: InstanceState; address: string }[] {
    return [...this.instances.values()].map((i) => ({ instanceId: i.id, state: i.state, address: i.address }));
  }

  usage(): { used: { cpuMillis: number; memoryMib: number }; instanceCount: number } {
    let cpuMillis = 0;
    let memoryMib = 0;
    for (const instance of this.instances.values()) {
      cpuMillis += instance.cpuMillis;
      memoryMib += instance.memoryMib;
    }
    return { used: { cpuMillis, memoryMib }, instanceCount: this.instances.size };
  }

  /** Live instances, then the recently ended ones. */
  views(): InstanceView[] {
    this.forgetOld();
    return [...[...this.instances.values()].map((i) => i.view()), ...[...this.finished.values()].map((f) => f.view)];
  }

  find(instanceId: string): InstanceRecordView | undefined {
    const instance = this.instances.get(instanceId);
    if (instance !== undefined) return { view: instance.view(), output: instance.output };
    const ended = this.finished.get(instanceId);
    return ended === undefined ? undefined : { view: ended.view, output: ended.output };
  }

  /** The guests' own figures summed over the instances whose guest has reported them. */
  guestFigures(): { reporting: number; memoryTotalBytes: number; memoryAvailableBytes: number; agentResidentBytes: number } {
    const sum = { reporting: 0, memoryTotalBytes: 0, memoryAvailableBytes: 0, agentResidentBytes: 0 };
    for (const instance of this.instances.values()) {
      const figures = instance.guestFigures;
      if (figures === undefined) continue;
      sum.reporting += 1;
      sum.memoryTotalBytes += Number(figures.memoryTotalBytes);
      sum.memoryAvailableBytes += Number(figures.memoryAvailableBytes);
      sum.agentResidentBytes += Number(figures.agentResidentBytes);
    }
    return sum;
  }

  countsByState(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const instance of this.instances.values()) {
      const name = InstanceState[instance.state] ?? String(instance.state);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return counts;
  }

  /** One pass of desired against actual; errors are counted and logged, never thrown. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.reconcileOnce().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /** Stops the periodic pass; with stopVms, stops every instance too (else their VMs keep running for the next agent). */
  async close(stopVms: boolean): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    await this.reconciling;
    const instances = [...this.instances.values()];
    if (stopVms) {
      await Promise.all(instances.map((i) => i.stop(SHUTDOWN_STOP_GRACE_MS, 'the node agent is shutting down')));
    } else {
      for (const instance of instances) instance.detach();
    }
    await this.deps.store.flush();
  }

  private async reconcileOnce(): Promise<void> {
    try {
      const running = await this.deps.driver.list();
      const byVm = new Map(running.map((vm) => [vm.instanceId, vm]));
      for (const instance of this.instances.values()) {
        const vmName = instance.vmName;
        if (vmName !== undefined && instance.workDir !== undefined && instance.live && !instance.isStarting && !byVm.has(vmName)) {
          this.deps.metrics.reconcileErrors.inc();
          instance.vmVanished();
        }
      }
      const owned = new Set([...this.instances.values()].map((i) => i.vmName));
      for (const vm of running) {
        if (owned.has(vm.instanceId)) continue;
        this.deps.log.warn({ vm: vm.instanceId, pid: vm.pid }, 'stopping a VM no instance owns');
        await this.deps.driver.stop(vm, { graceMs: SHUTDOWN_STOP_GRACE_MS });
      }
    } catch (error) {
      this.deps.metrics.reconcileErrors.inc();
      this.deps.log.error({ err: error instanceof Error ? error.message : String(error) }, 'reconcile pass failed');
    }
  }

  private onFinished(instance: Instance): void {
    if (this.instances.get(instance.id) === instance) this.instances.delete(instance.id);
    instance.output.shrink(FINISHED_OUTPUT_BYTES);
    this.remember(instance.view(), instance.output);
  }

  private remember(view: InstanceView, output: OutputBuffer | undefined): void {
    this.finished.delete(view.instanceId);
    this.finished.set(view.instanceId, { view, output, at: Date.now() });
    this.forgetOld();
  }

  private forgetOld(): void {
    const cutoff = Date.now() - FINISHED_TTL_MS;
    for (const [id, entry] of this.finished) {
      if (this.finished.size > FINISHED_MAX || entry.at < cutoff) this.finished.delete(id);
      else break;
    }
  }
}
