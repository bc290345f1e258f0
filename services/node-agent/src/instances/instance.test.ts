// An Instance driven through its life against in-memory stand-ins: a VmDriver whose "VMs" are
// GuestService servers in this process (one Unix socket each), with a workload the test starts,
// exits and makes unhealthy; rootfs, secrets and state file as in the agent. Each case checks the
// exact sequence of states the scheduler hears.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { type Client, Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import { type Grant, GrantClaimsSchema, GrantSchema } from '@shellwego/contracts/common/v1/grant_pb';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { GuestService, type WaitResponse, WaitResponseSchema } from '@shellwego/contracts/guest/v1/guest_pb';
import { type InstanceSpec, InstanceSpecSchema } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { createMetricsRegistry } from '@shellwego/kit/metrics';
import { type GuestChannelServer, serveGuestChannel } from '@shellwego/kit/vm-channel';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdoptResult, VmDriver, VmExit, VmHandle, VmRecord, VmSpec } from '../drivers/index.js';
import { createNodeMetrics } from '../metrics/node-metrics.js';
import type { RootfsCache } from '../rootfs/rootfs-cache.js';
import type { InstanceEventInit } from '../session/scheduler-session.js';
import { Instance, type InstanceDeps } from './instance.js';
import { StateStore } from './state-store.js';

/** A guest agent stand-in: one workload at a time, its events on Wait (replayed from its last start), Health as the test sets it. */
class GuestStandIn {
  healthy = true;
  /** The workload ignores SIGTERM (a stop then waits out its grace). */
  ignoresTerm = false;
  pid: number | undefined;
  readonly signals: string[] = [];
  private nextPid = 100;
  private history: WaitResponse[] = [];
  private readonly listeners = new Set<(event: WaitResponse) => void>();

  readonly routes = (router: ConnectRouter): void => {
    router.service(GuestService, {
      run: () => ({ pid: this.startWorkload() }),
      injectSecrets: () => {
        if (this.pid !== undefined) this.exitWorkload({ signal: 'SIGTERM' });
        return { pid: this.startWorkload() };
      },
      signal: (req) => {
        if (this.pid === undefined) throw new ConnectError('no workload', Code.FailedPrecondition);
        this.signals.push(req.signal);
        if (!this.ignoresTerm) this.exitWorkload({ signal: req.signal });
        return {};
      },
      wait: (_req, context) => this.follow(context.signal),
      health: () => ({
        agentAlive: true,
        workloadRunning: this.pid !== undefined,
        healthy: this.pid !== undefined && this.healthy,
        detail: this.healthy ? 'probe passed' : 'probe failed',
      }),
    });
  };

  exitWorkload(how: { exitCode?: number; signal?: string }): void {
    const pid = this.pid ?? 0;
    this.pid = undefined;
    this.emit({ case: 'exited', value: { pid, signal: how.signal ?? '', ...(how.exitCode === undefined ? {} : { exitCode: how.exitCode }) } });
  }

  private startWorkload(): number {
    this.pid = this.nextPid++;
    this.history = [];
    this.emit({ case: 'started', value: { pid: this.pid } });
    return this.pid;
  }

  private emit(event: MessageInitShape<typeof WaitResponseSchema>['event']): void {
    const message = create(WaitResponseSchema, { time: timestampNow(), event });
    this.history.push(message);
    for (const listener of this.listeners) listener(message);
  }

  private async *follow(signal: AbortSignal): AsyncGenerator<WaitResponse> {
    const queue = [...this.history];
    let wake: (() => void) | undefined;
    const listener = (event: WaitResponse): void => {
      queue.push(event);
      wake?.();
    };
    this.listeners.add(listener);
    try {
      while (!signal.aborted) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    } finally {
      this.listeners.delete(listener);
    }
  }
}

interface VmStandIn {
  readonly handle: VmHandle;
  readonly guest: GuestStandIn;
  powerOff(exit: VmExit): Promise<void>;
}

/** An in-memory VmDriver: boot serves a GuestStandIn on a Unix socket; the VM "runs" until stopped or crashed. */
class DriverStandIn implements VmDriver {
  readonly kind = 'process' as const;
  readonly vms = new Map<string, VmStandIn>();
  readonly stopped: string[] = [];
  /** Boots wait for it; set before the boot. */
  bootGate: Promise<void> = Promise.resolve();
  bootError: Error | undefined;

  constructor(private readonly dir: string) {}

  async sweepOrphans(): Promise<string[]> {
    return [];
  }

  async boot(spec: VmSpec): Promise<VmHandle> {
    await this.bootGate;
    if (this.bootError !== undefined) throw this.bootError;
    const guest = new GuestStandIn();
    const path = join(this.dir, `${spec.instanceId}.sock`);
    const server: GuestChannelServer = await serveGuestChannel(guest.routes, { kind: 'unix', path });
    let exit: (exit: VmExit) => void = () => undefined;
    const handle: VmHandle = {
      driver: 'process',
      instanceId: spec.instanceId,
      pid: 4242,
      channel: { kind: 'unix', path },
      workDir: spec.workDir,
      bootedAt: new Date().toISOString(),
      detail: 'in-memory stand-in',
      consoleLogPath: join(this.dir, 'no-console.log'),
      exited: new Promise((resolve) => (exit = resolve)),
    };
    const vm: VmStandIn = {
      handle,
      guest,
      powerOff: async (how) => {
        this.vms.delete(spec.instanceId);
        await server.close();
        exit(how);
      },
    };
    this.vms.set(spec.instanceId, vm);
    return handle;
  }

  async stop(record: VmRecord): Promise<void> {
    this.stopped.push(record.instanceId);
    await this.vms.get(record.instanceId)?.powerOff({ code: 0, signal: null });
  }

  async adopt(record: VmRecord): Promise<AdoptResult> {
    const vm = this.vms.get(record.instanceId);
    return vm === undefined ? { kind: 'gone', reason: 'not running' } : { kind: 'adopted', handle: vm.handle };
  }

  async list(): Promise<VmHandle[]> {
    return [...this.vms.values()].map((vm) => vm.handle);
  }

  guest(instanceId: string): GuestStandIn {
    const vm = this.vms.get(instanceId);
    if (vm === undefined) throw new Error(`no VM ${instanceId}`);
    return vm.guest;
  }

  crash(instanceId: string): Promise<void> {
    return this.vms.get(instanceId)?.powerOff({ code: null, signal: 'SIGKILL' }) ?? Promise.resolve();
  }
}

let dir: string;
let caseNo = 0;
const instances: Instance[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'na-inst-'));
});

afterEach(async () => {
  for (const instance of instances.splice(0)) if (instance.live) await instance.stop(0, 'test over');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Gates {
  /** The rootfs fetch waits for it. */
  rootfs?: Promise<void>;
  /** ResolveSecrets waits for it. */
  secrets?: Promise<void>;
}

function setup(stateDir = join(dir, `case-${++caseNo}`), driver = new DriverStandIn(dir), gates: Gates = {}) {
  const { logger, lines } = capturingLogger();
  const events: InstanceEventInit[] = [];
  // Stand-in for the rootfs cache: the instance calls acquire and its lease's release.
  const rootfs = {
    acquire: async (_digest: string, _grant: Grant, signal?: AbortSignal) => {
      await Promise.race([gates.rootfs, new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('fetch aborted'))))]);
      return { path: join(dir, 'rootfs.ext4'), fetched: true, release: async () => undefined };
    },
  } as unknown as RootfsCache;
  // Stand-in for the secrets client: the instance calls only ResolveSecrets.
  const secrets = {
    resolveSecrets: async () => {
      await gates.secrets;
      return { secrets: [{ name: 'TOKEN', value: Buffer.from('s3cret'), version: 1 }] };
    },
  } as unknown as Client<typeof SecretsService>;
  const store = new StateStore(stateDir, logger);
  const deps: InstanceDeps = {
    driver,
    guestImage: undefined,
    vmDir: join(stateDir, 'vms'),
    rootfs,
    secrets: () => secrets,
    store,
    metrics: createNodeMetrics(createMetricsRegistry(), {
      instancesByState: () => new Map(),
      sessionConnected: () => true,
      rootfsCacheBytes: () => 0,
      guests: () => ({ reporting: 0, memoryTotalBytes: 0, memoryAvailableBytes: 0, agentResidentBytes: 0 }),
    }),
    log: logger,
    settings: { bootTimeoutMs: 5_000, runTimeoutMs: 5_000, logBufferBytes: 64 * 1024 },
    report: (event) => events.push(event),
    finished: () => undefined,
  };
  const states = () => events.map((e) => InstanceState[e.state]);
  return { deps, driver, events, states, store, lines, stateDir };
}

function spec(instanceId: string): InstanceSpec {
  return create(InstanceSpecSchema, {
    instanceId,
    app: 'shop',
    version: 1,
    imageDigest: `sha256:${'c'.repeat(64)}`,
    resources: { cpuMillis: 100, memoryMib: 32 },
    argv: ['/bin/serve'],
    secretNames: ['TOKEN'],
    healthCheck: { probe: { case: 'tcp', value: { port: 8080 } }, interval: { seconds: 0n, nanos: 50_000_000 } },
  });
}

const grant = create(GrantSchema, {
  claims: toBinary(GrantClaimsSchema, create(GrantClaimsSchema, { secretNames: ['TOKEN'] })),
  signature: new Uint8Array(64),
  keyId: 'test',
});

function assign(deps: InstanceDeps, id: string): Instance {
  const instance = Instance.assign(spec(id), { secrets: grant, rootfs: grant }, deps);
  instances.push(instance);
  return instance;
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('Instance lifecycle with an in-memory driver', () => {
  it('starts to HEALTHY, falls back to RUNNING on failing checks, restarts with refreshed secrets, and stops', async () => {
    const t = setup();
    const instance = assign(t.deps, 'life-1');
    await until(() => instance.state === InstanceState.HEALTHY, 'HEALTHY');
    expect(t.states()).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY']);

    const guest = t.driver.guest('life-1');
    guest.healthy = false;
    await until(() => instance.state === InstanceState.RUNNING, 'RUNNING again');
    expect(t.events.at(-1)?.reason).toBe('health check failing: probe failed');
    guest.healthy = true;
    await until(() => instance.state === InstanceState.HEALTHY, 'HEALTHY again');

    const firstPid = guest.pid;
    await instance.refresh(grant);
    expect(guest.pid).not.toBe(firstPid);
    await until(() => instance.state === InstanceState.HEALTHY, 'HEALTHY after the refresh');
    expect(t.events.at(-2)).toMatchObject({ state: InstanceState.RUNNING, reason: 'restarted with refreshed secrets' });

    await instance.stop(1_000, 'scaled down');
    expect(guest.signals).toEqual(['SIGTERM']);
    expect(t.driver.stopped).toEqual(['life-1']);
    expect(t.states()).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'RUNNING', 'HEALTHY', 'RUNNING', 'HEALTHY', 'STOPPING', 'STOPPED']);
    expect(instance.phase).toBe('STOPPED');
    expect((await t.store.load()).instances).toEqual([]);
    // A second stop is the first one's outcome, not a new transition.
    await instance.stop(1_000, 'again');
    expect(t.events).toHaveLength(11);
  });

  it('fails when the VM does not boot', async () => {
    const t = setup();
    t.driver.bootError = new Error('no KVM here');
    const instance = assign(t.deps, 'noboot-1');
    await instance.done;
    expect(t.states()).toEqual(['PULLING', 'BOOTING', 'FAILED']);
    expect(t.events.at(-1)?.reason).toBe('the VM did not boot: no KVM here');
    expect(instance.phase).toBe('FAILED');
  });

  it('fails with the exit code when the workload exits, and when the VM dies', async () => {
    const t = setup();
    const exits = assign(t.deps, 'exit-1');
    const dies = assign(t.deps, 'dies-1');
    await until(() => exits.state === InstanceState.HEALTHY && dies.state === InstanceState.HEALTHY, 'both HEALTHY');
    t.driver.guest('exit-1').exitWorkload({ exitCode: 3 });
    await t.driver.crash('dies-1');
    await Promise.all([exits.done, dies.done]);
    const of = (id: string) => t.events.filter((e) => e.instanceId === id);
    expect(of('exit-1').map((e) => InstanceState[e.state])).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'FAILED']);
    expect(of('exit-1').at(-1)).toMatchObject({ exitCode: 3, reason: expect.stringMatching(/^the workload exited with code 3 \d+\.\d s after it started/) });
    expect(of('dies-1').map((e) => InstanceState[e.state])).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'FAILED']);
    expect(of('dies-1').at(-1)?.reason).toBe('the VM exited unexpectedly (signal SIGKILL)');
    expect(t.driver.stopped.sort()).toEqual(['dies-1', 'exit-1']);
  });

  it('stops during the rootfs fetch, the boot and the secret resolution without reporting a later start step', async () => {
    const pulling = gate();
    const booting = gate();
    const resolving = gate();
    const driver = new DriverStandIn(dir);
    driver.bootGate = booting.promise;
    const t = setup(undefined, driver, { rootfs: pulling.promise, secrets: resolving.promise });
    const inPull = assign(t.deps, 'pull-1');
    await until(() => inPull.state === InstanceState.PULLING, 'PULLING');
    await inPull.stop(1_000, 'deleted');
    expect(t.states()).toEqual(['PULLING', 'STOPPING', 'STOPPED']);

    t.events.length = 0;
    pulling.open();
    const inBoot = assign(t.deps, 'boot-1');
    await until(() => inBoot.state === InstanceState.BOOTING, 'BOOTING');
    const stopped = inBoot.stop(1_000, 'deleted');
    booting.open();
    await stopped;
    expect(t.states()).toEqual(['PULLING', 'BOOTING', 'STOPPING', 'STOPPED']);
    // The VM that finished booting after the stop is powered off, not left behind.
    expect(driver.stopped).toEqual(['boot-1']);
    expect(driver.vms.size).toBe(0);

    t.events.length = 0;
    const inSecrets = assign(t.deps, 'secrets-1');
    await until(() => inSecrets.state === InstanceState.STARTING, 'STARTING');
    const guest = driver.guest('secrets-1');
    const stopping = inSecrets.stop(1_000, 'deleted');
    resolving.open();
    await stopping;
    expect(t.states()).toEqual(['PULLING', 'BOOTING', 'STARTING', 'STOPPING', 'STOPPED']);
    // The workload never ran: nothing to signal.
    expect([guest.pid, guest.signals]).toEqual([undefined, []]);
    expect(driver.stopped).toEqual(['boot-1', 'secrets-1']);
  });

  it('detaches without a word, and a new agent re-adopts the running VM or fails the start it cut short', async () => {
    const stateDir = join(dir, 'adopt');
    const secretsHeld = gate();
    const first = setup(stateDir, new DriverStandIn(dir));
    const runs = assign(first.deps, 'runs-1');
    await until(() => runs.state === InstanceState.HEALTHY, 'HEALTHY');
    const slowFirst = setup(stateDir, first.driver, { secrets: secretsHeld.promise });
    // Same store for both: one state file per agent.
    const cut = Instance.assign(
      spec('cut-1'),
      { secrets: grant, rootfs: grant },
      { ...slowFirst.deps, store: first.store, report: (e) => first.events.push(e) },
    );
    instances.push(cut);
    await until(() => cut.state === InstanceState.STARTING, 'STARTING');
    const before = first.events.length;

    // The agent shuts down: both detach, nothing is reported, the VMs keep running.
    runs.detach();
    cut.detach();
    secretsHeld.open();
    await first.store.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(first.events).toHaveLength(before);
    expect([runs.phase, cut.phase]).toEqual(['DETACHED', 'DETACHED']);
    expect([...first.driver.vms.keys()].sort()).toEqual(['cut-1', 'runs-1']);
    expect(first.driver.stopped).toEqual([]);

    // The next agent process: the same driver (the VMs outlived the agent), a new state store.
    const second = setup(stateDir, first.driver);
    const loaded = await second.store.load();
    const adopted = new Map<string, Instance>();
    for (const entry of loaded.instances) {
      const result = await second.driver.adopt(entry.vm);
      if (result.kind !== 'adopted') throw new Error(result.reason);
      adopted.set(entry.instanceId, Instance.adopt(entry, result.handle, undefined, second.deps));
    }
    const again = adopted.get('runs-1');
    const lost = adopted.get('cut-1');
    if (again === undefined || lost === undefined) throw new Error(`adopted ${[...adopted.keys()].join(', ')}`);
    instances.push(again, lost);
    await lost.done;
    expect(second.events.map((e) => [e.instanceId, InstanceState[e.state], e.reason])).toEqual([
      ['cut-1', 'FAILED', 'the node agent restarted while the instance was STARTING; its start cannot be resumed'],
    ]);
    expect([again.phase, again.state]).toEqual(['HEALTHY', InstanceState.HEALTHY]);

    // The re-adopted workload is followed: its exit fails the instance with its code.
    second.driver.guest('runs-1').exitWorkload({ exitCode: 7 });
    await again.done;
    expect(second.events.at(-1)).toMatchObject({ instanceId: 'runs-1', state: InstanceState.FAILED, exitCode: 7 });
    expect(second.events).toHaveLength(2);
  });

  it('ignores the VM exit and workload exit of a detached instance', async () => {
    const t = setup();
    const instance = assign(t.deps, 'quiet-1');
    await until(() => instance.state === InstanceState.HEALTHY, 'HEALTHY');
    const count = t.events.length;
    instance.detach();
    t.driver.guest('quiet-1').exitWorkload({ exitCode: 1 });
    await t.driver.crash('quiet-1');
    instance.vmVanished();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.events).toHaveLength(count);
    expect(instance.phase).toBe('DETACHED');
    expect(t.lines.some((line) => line.includes('not a declared lifecycle transition'))).toBe(false);
  });

  it('finishes a stop that was under way when the agent detached, without reporting STOPPED', async () => {
    const t = setup();
    const instance = assign(t.deps, 'half-1');
    await until(() => instance.state === InstanceState.HEALTHY, 'HEALTHY');
    t.driver.guest('half-1').ignoresTerm = true;
    const stopped = instance.stop(500, 'scaled down');
    await until(() => t.driver.guest('half-1').signals.length === 1, 'SIGTERM');
    instance.detach();
    await stopped;
    expect(t.states()).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY', 'STOPPING']);
    expect(instance.phase).toBe('DETACHED');
    expect(t.driver.stopped).toEqual(['half-1']);
  });
});
