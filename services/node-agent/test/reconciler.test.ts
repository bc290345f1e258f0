// The reconciler and instance lifecycle with the real process driver and the real bundled guest
// agent (separate processes), the Session replaced by direct calls and the control plane by
// stand-ins: a rootfs fetcher that writes a file, and a secrets client that answers
// ResolveSecrets from a map. Covers what the end-to-end tests cannot time precisely: a stop
// during the fetch, the health deadline, a VM that vanishes, re-adoption of a workload that
// exited while no agent ran, and idempotent orders.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { GrantClaimsSchema } from '@shellwego/contracts/common/v1/grant_pb';
import type { HealthCheckSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { type Assign, AssignSchema } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { createMetricsRegistry } from '@shellwego/kit/metrics';
import { descendantsOf, isRunning } from '@shellwego/kit/process';
import { buildGuestAgent } from '@shellwego/testing/guest-agent';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessDriver } from '../src/drivers/process/process-driver.js';
import { Reconciler, type ReconcilerDeps } from '../src/instances/reconciler.js';
import { StateStore } from '../src/instances/state-store.js';
import { createNodeMetrics } from '../src/metrics/node-metrics.js';
import { RootfsCache } from '../src/rootfs/rootfs-cache.js';
import type { InstanceEventInit } from '../src/session/scheduler-session.js';

let dir: string;
let bundle: string;
/** The stand-in registry's rootfs bytes are 'rootfs'; grants pin their sha256. */
const ROOTFS_SHA256 = `sha256:${createHash('sha256').update('rootfs').digest('hex')}`;
const reconcilers: Reconciler[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'na-rec-'));
  bundle = (await buildGuestAgent()).outfile;
});

afterAll(async () => {
  for (const r of reconcilers) await r.close(true);
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  readonly reconciler: Reconciler;
  readonly events: InstanceEventInit[];
  readonly fetches: string[];
  readonly stateDir: string;
  until(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

async function harness(stateDir: string, options: { fetchDelayMs?: number; secrets?: Record<string, Buffer> } = {}): Promise<Harness> {
  const events: InstanceEventInit[] = [];
  const fetches: string[] = [];
  const waiters = new Set<() => void>();
  const { logger } = capturingLogger();
  const rootfs = new RootfsCache({
    dir: join(stateDir, 'rootfs'),
    maxBytes: 1 << 20,
    log: logger,
    // Stand-in for the registry: a file with known content.
    fetch: async (imageDigest, _grant, _sha256, path, signal) => {
      fetches.push(imageDigest);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, options.fetchDelayMs ?? 0);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new Error('fetch aborted'));
        });
      });
      await writeFile(path, 'rootfs');
      return { sizeBytes: 6, sha256: ROOTFS_SHA256 };
    },
  });
  await rootfs.init();
  // Stand-in for the secrets service client: only ResolveSecrets is called.
  const secrets = {
    resolveSecrets: async () => ({ secrets: Object.entries(options.secrets ?? {}).map(([name, value]) => ({ name, value: Buffer.from(value), version: 1 })) }),
  } as unknown as Client<typeof SecretsService>; // the reconciler calls nothing else on it
  const deps: ReconcilerDeps = {
    driver: new ProcessDriver({ log: logger, guestAgentBundle: bundle, workloadGraceMs: 1_000 }),
    guestImage: undefined,
    vmDir: join(stateDir, 'vms'),
    rootfs,
    secrets: () => secrets,
    store: new StateStore(stateDir, logger),
    metrics: createNodeMetrics(createMetricsRegistry(), {
      instancesByState: () => new Map(),
      sessionConnected: () => true,
      rootfsCacheBytes: () => 0,
      guests: () => ({ reporting: 0, memoryTotalBytes: 0, memoryAvailableBytes: 0, agentResidentBytes: 0 }),
    }),
    log: logger,
    settings: { bootTimeoutMs: 15_000, runTimeoutMs: 15_000, logBufferBytes: 64 * 1024 },
    report: (event) => {
      events.push(event);
      for (const wake of [...waiters]) wake();
    },
    reconcileIntervalMs: 60_000,
  };
  const reconciler = new Reconciler(deps);
  reconcilers.push(reconciler);
  await reconciler.adoptAll();
  const until = (check: () => boolean, what: string, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        if (!check()) return;
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(done);
        reject(
          new Error(
            `timed out waiting for ${what}; events: ${events.map((e) => `${e.instanceId} ${InstanceState[e.state]} ${String(e.reason ?? '')}`).join('; ')}`,
          ),
        );
      }, timeoutMs);
      waiters.add(done);
      done();
    });
  return { reconciler, events, fetches, stateDir, until };
}

interface SpecChanges {
  readonly argv?: string[];
  readonly secretNames?: string[];
  readonly healthCheck?: MessageInitShape<typeof HealthCheckSchema>;
  readonly healthDeadline?: { seconds: bigint; nanos: number };
}

function assign(instanceId: string, spec: SpecChanges = {}): Assign {
  return create(AssignSchema, {
    spec: {
      instanceId,
      app: 'shop',
      version: 1,
      imageDigest: `sha256:${'b'.repeat(64)}`,
      resources: { cpuMillis: 100, memoryMib: 32 },
      argv: ['/bin/sh', '-c', 'printf %s "$TOKEN" | sha256sum; exec sleep 600'],
      secretNames: [],
      ...spec,
    },
    grant: { claims: new Uint8Array([1]), signature: new Uint8Array(64), keyId: 'test' },
    // Unsigned: the agent only reads the rootfs sha256 it pins (the registry checks signatures).
    rootfsGrant: {
      claims: toBinary(GrantClaimsSchema, create(GrantClaimsSchema, { rootfsSha256: ROOTFS_SHA256 })),
      signature: new Uint8Array(64),
      keyId: 'test',
    },
  });
}

async function vmPids(stateDir: string): Promise<Map<string, number>> {
  const state = JSON.parse(await readFile(join(stateDir, 'instances.json'), 'utf8')) as { instances: { instanceId: string; vm: { pid: number } }[] };
  return new Map(state.instances.map((i) => [i.instanceId, i.vm.pid]));
}

const stateOf = (h: Harness, id: string) => [...h.events].reverse().find((e) => e.instanceId === id)?.state;
const statesOf = (h: Harness, id: string) => h.events.filter((e) => e.instanceId === id).map((e) => InstanceState[e.state]);

describe('reconciler with the process driver', () => {
  it('runs an assignment to HEALTHY with its secret, ignores a repeat, and stops it leaving nothing', { timeout: 60_000 }, async () => {
    const token = randomBytes(8).toString('hex');
    const h = await harness(join(dir, 'a'), { secrets: { TOKEN: Buffer.from(token) } });
    h.reconciler.assign(assign('run-1', { secretNames: ['TOKEN'] }));
    h.reconciler.assign(assign('run-1', { secretNames: ['TOKEN'] }));
    await h.until(() => stateOf(h, 'run-1') === InstanceState.HEALTHY, 'HEALTHY');
    expect(statesOf(h, 'run-1')).toEqual(['PULLING', 'BOOTING', 'STARTING', 'RUNNING', 'HEALTHY']);
    expect(h.reconciler.running()).toEqual([{ instanceId: 'run-1', state: InstanceState.HEALTHY, address: '' }]);
    expect(h.reconciler.usage()).toEqual({ used: { cpuMillis: 100, memoryMib: 32 }, instanceCount: 1 });
    const output = h.reconciler.find('run-1')?.output;
    const abort = new AbortController();
    let text = '';
    for await (const chunk of output?.read(true, abort.signal) ?? []) {
      text += Buffer.from(chunk.data).toString();
      if (text.includes('-')) break;
    }
    expect(text).toContain(createHash('sha256').update(token).digest('hex'));
    const workDir = join(h.stateDir, 'vms', 'run-1');
    expect(existsSync(workDir)).toBe(true);

    h.reconciler.stop({ $typeName: 'shellwego.scheduler.v1.Stop', instanceId: 'run-1', reason: 'scaled down' });
    await h.until(() => stateOf(h, 'run-1') === InstanceState.STOPPED, 'STOPPED');
    expect(statesOf(h, 'run-1').slice(-2)).toEqual(['STOPPING', 'STOPPED']);
    expect(existsSync(workDir)).toBe(false);
    expect(h.reconciler.running()).toEqual([]);
    // Orders about an instance that ended are answered, not acted on.
    h.reconciler.assign(assign('run-1'));
    h.reconciler.stop({ $typeName: 'shellwego.scheduler.v1.Stop', instanceId: 'never-here', reason: 'x' });
    expect(h.events.slice(-2).map((e) => [e.instanceId, InstanceState[e.state]])).toEqual([
      ['run-1', 'STOPPED'],
      ['never-here', 'STOPPED'],
    ]);
    expect(h.fetches).toHaveLength(1);
  });

  it('stops an instance still fetching its rootfs without booting anything', async () => {
    const h = await harness(join(dir, 'b'), { fetchDelayMs: 5_000 });
    h.reconciler.assign(assign('slow-1'));
    await h.until(() => stateOf(h, 'slow-1') === InstanceState.PULLING, 'PULLING');
    h.reconciler.stop({ $typeName: 'shellwego.scheduler.v1.Stop', instanceId: 'slow-1', reason: 'deleted' });
    await h.until(() => stateOf(h, 'slow-1') === InstanceState.STOPPED, 'STOPPED', 3_000);
    expect(statesOf(h, 'slow-1')).toEqual(['PULLING', 'STOPPING', 'STOPPED']);
    expect(await readdir(join(h.stateDir, 'vms')).catch(() => [])).toEqual([]);
  });

  it('fails an instance whose health check does not pass by its deadline', { timeout: 30_000 }, async () => {
    const h = await harness(join(dir, 'c'));
    h.reconciler.assign(
      assign('sick-1', {
        argv: ['/bin/sh', '-c', 'exec sleep 600'],
        healthCheck: { probe: { case: 'tcp', value: { port: 9 } }, interval: { seconds: 0n, nanos: 200_000_000 } },
        healthDeadline: { seconds: 1n, nanos: 0 },
      }),
    );
    await h.until(() => stateOf(h, 'sick-1') === InstanceState.FAILED, 'FAILED');
    const failed = h.events.at(-1);
    expect(failed?.reason).toMatch(/^the health check did not pass within 1 s of the workload starting: tcp probe: 127\.0\.0\.1:9: ECONNREFUSED$/);
    expect(statesOf(h, 'sick-1')).not.toContain('HEALTHY');
    expect(await readdir(join(h.stateDir, 'vms'))).toEqual([]);
  });

  it('fails an instance whose VM vanished, found by the reconcile pass', { timeout: 30_000 }, async () => {
    const h = await harness(join(dir, 'd'));
    h.reconciler.assign(assign('gone-1', { argv: ['/bin/sh', '-c', 'exec sleep 600'] }));
    await h.until(() => stateOf(h, 'gone-1') === InstanceState.HEALTHY, 'HEALTHY');
    // The "VM" dies whole, as a real one does: the guest agent and the workload it runs.
    const pid = (await vmPids(h.stateDir)).get('gone-1') ?? 0;
    for (const victim of [pid, ...descendantsOf(pid)]) process.kill(victim, 'SIGKILL');
    await h.until(() => stateOf(h, 'gone-1') === InstanceState.FAILED, 'FAILED');
    expect(h.events.at(-1)?.reason).toMatch(/^the VM (exited unexpectedly \(signal SIGKILL\)|is no longer running)/);
    await h.reconciler.reconcile();
    expect(await readdir(join(h.stateDir, 'vms'))).toEqual([]);
  });

  it('re-adopts a running instance in a new reconciler, and reports FAILED for one whose workload exited meanwhile', { timeout: 60_000 }, async () => {
    const stateDir = join(dir, 'e');
    const first = await harness(stateDir);
    const quitFile = join(dir, 'quit-now');
    first.reconciler.assign(assign('stay-1', { argv: ['/bin/sh', '-c', 'echo up; exec sleep 600'] }));
    first.reconciler.assign(assign('quit-1', { argv: ['/bin/sh', '-c', `while [ ! -e ${quitFile} ]; do sleep 0.05; done; exit 7`] }));
    await first.until(() => stateOf(first, 'stay-1') === InstanceState.HEALTHY && stateOf(first, 'quit-1') === InstanceState.HEALTHY, 'both HEALTHY');
    const pids = await vmPids(stateDir);
    // The agent goes away without stopping its VMs.
    await first.reconciler.close(false);
    reconcilers.splice(reconcilers.indexOf(first.reconciler), 1);
    for (const pid of pids.values()) expect(isRunning(pid)).toBe(true);
    // While no agent runs, quit-1's workload exits (a process we did not spawn: watched through /proc).
    const workload = descendantsOf(pids.get('quit-1') ?? 0)[0] ?? 0;
    await writeFile(quitFile, '');
    while (isRunning(workload)) await new Promise((resolve) => setTimeout(resolve, 20));

    const second = await harness(stateDir);
    expect(
      second.reconciler
        .running()
        .map((r) => r.instanceId)
        .sort(),
    ).toEqual(['quit-1', 'stay-1']);
    await second.until(() => stateOf(second, 'quit-1') === InstanceState.FAILED, 'quit-1 FAILED');
    expect(second.events.find((e) => e.instanceId === 'quit-1')).toMatchObject({ state: InstanceState.FAILED, exitCode: 7 });
    expect(second.events.filter((e) => e.instanceId === 'stay-1')).toEqual([]);
    expect(second.reconciler.running()).toEqual([{ instanceId: 'stay-1', state: InstanceState.HEALTHY, address: '' }]);
    expect(isRunning(pids.get('stay-1') ?? 0)).toBe(true);
  });
});
