// ResolveSecrets throughput and latency against a bare RPC on the same server.
// The real secrets process runs on Postgres with mTLS; many concurrent callers
// resolve one grant naming 10 secrets, alternating in one-second slices with
// the same callers calling grpc.health.v1.Health/Check on the same listener
// (through the same interceptors: request log, authorization) as the echo
// baseline. The server's CPU per call is reported too: unlike throughput it
// hardly moves with the load of a shared machine. SetSecret throughput is
// measured last. Run directly (`npx tsx test/bench/secrets.bench.ts`) for a
// table, or through `npm run bench secrets`.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Transport } from '@connectrpc/connect';
import { createClient } from '@connectrpc/connect';
import { Health } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { SecretScopeKind, SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { loadGrantSigningKey, signGrant } from '@shellwego/kit/grant';
import { ensureDevPki } from '@shellwego/kit/pki';
import { waitServing } from '@shellwego/kit/process';
import type { TlsMaterial } from '@shellwego/kit/rpc';
import { createMtlsTransport, expectedService } from '@shellwego/kit/rpc';
import type { BenchResult, BenchTarget } from '@shellwego/testing/bench/bench-result';
import { runIfMain } from '@shellwego/testing/bench/run-bench';
import { freePort } from '@shellwego/testing/free-port';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { startService } from '@shellwego/testing/service-process';

const SECRETS_PER_GRANT = 10;
/** HTTP/2 connections, and calls in flight on each. */
const CONNECTIONS = 4;
const IN_FLIGHT_PER_CONNECTION = 16;
const CONCURRENCY = CONNECTIONS * IN_FLIGHT_PER_CONNECTION;
const WARMUP_MS = 1_000;
const ROUNDS = 5;
const SLICE_MS = 1_000;
const SET_MEASURE_MS = 3_000;
const SET_CONCURRENCY = 16;
/** From the project's issues: ResolveSecrets at least half the throughput of the bare echo RPC. */
const TARGET: BenchTarget = { on: 'ratio', bound: 'atLeast', value: 0.5 };
const RESOLVE_NAME = `ResolveSecrets (${SECRETS_PER_GRANT} secrets), ${CONCURRENCY} callers`;

/** Calls of one kind, accumulated over several slices. */
class Samples {
  readonly latencies: number[] = [];
  elapsedMs = 0;
  /** Server CPU spent during this kind's slices; undefined where it cannot be read. */
  serverCpuMs: number | undefined = 0;

  /** Runs `call` from `concurrency` loops for `ms`, recording each call's latency and the server's CPU. */
  async slice(concurrency: number, ms: number, call: (worker: number) => Promise<unknown>, serverCpu: () => Promise<number | undefined>): Promise<void> {
    const cpuBefore = await serverCpu();
    const started = performance.now();
    const until = started + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        while (performance.now() < until) {
          const t = performance.now();
          await call(worker);
          this.latencies.push(performance.now() - t);
        }
      }),
    );
    this.elapsedMs += performance.now() - started;
    const cpuAfter = await serverCpu();
    this.serverCpuMs =
      this.serverCpuMs === undefined || cpuBefore === undefined || cpuAfter === undefined ? undefined : this.serverCpuMs + cpuAfter - cpuBefore;
  }

  summary(): { perSecond: number; p50Ms: number; p99Ms: number; cpuPerCallUs: number | undefined } {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    const calls = sorted.length;
    return {
      perSecond: (calls / this.elapsedMs) * 1000,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      cpuPerCallUs: this.serverCpuMs === undefined || calls === 0 ? undefined : (this.serverCpuMs * 1000) / calls,
    };
  }
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * CPU time (user + system) the process has used, from /proc; undefined where
 * there is no /proc. Throughput on a shared machine moves with its load; CPU
 * per call does much less, so it is reported beside it.
 */
async function processCpuMs(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    // utime and stime, fields 14 and 15 of proc(5), in USER_HZ ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

export async function run(): Promise<BenchResult[]> {
  const skip = await postgresUnavailable();
  if (skip !== undefined) return [{ name: RESOLVE_NAME, target: TARGET, notRun: skip }];
  const database = await createPostgresTestDatabase();
  const home = await mkdtemp(join(tmpdir(), 'shellwego-secrets-bench-'));
  const port = await freePort();
  const lines: string[] = [];
  const service = await startService(
    'secrets',
    {
      ...process.env,
      SHELLWEGO_HOME: home,
      SHELLWEGO_SECRETS_LISTEN: `127.0.0.1:${port}`,
      SHELLWEGO_SECRETS_DATABASE: database.url,
      // Per-call log lines would cost both sides the same; keep them out of the comparison.
      SHELLWEGO_LOG_LEVEL: 'warn',
    },
    (line) => lines.push(line),
  );
  try {
    const pki = await ensureDevPki(home);
    const ca = await readFile(pki.caCert, 'utf8');
    const admin: TlsMaterial = { caPem: ca, certPem: await readFile(pki.admin.cert, 'utf8'), keyPem: await readFile(pki.admin.key, 'utf8') };
    const node: TlsMaterial = {
      caPem: ca,
      certPem: await readFile(pki.processes['node-agent'].cert, 'utf8'),
      keyPem: await readFile(pki.processes['node-agent'].key, 'utf8'),
    };
    const url = `https://127.0.0.1:${port}`;
    if (!(await waitServing(url, expectedService('secrets'), admin, 60_000, new AbortController().signal))) {
      throw new Error(`the secrets service did not start:\n${lines.slice(-20).join('\n')}`);
    }

    const adminClient = createClient(SecretsService, createMtlsTransport({ baseUrl: url, server: expectedService('secrets'), tls: admin }));
    const names = Array.from({ length: SECRETS_PER_GRANT }, (_, i) => `BENCH_SECRET_${i}`);
    for (const [i, name] of names.entries()) {
      // Half app scope, half workspace: the resolve exercises the fallback.
      const scope = i % 2 === 0 ? { kind: SecretScopeKind.APP, app: 'bench' } : { kind: SecretScopeKind.WORKSPACE };
      await adminClient.setSecret({ scope, name, value: randomBytes(32) });
    }
    const signing = loadGrantSigningKey(await readFile(pki.grantSigningKey, 'utf8'));
    const grant = signGrant(
      {
        audience: 'secrets',
        instanceId: 'bench-1',
        app: 'bench',
        nodeId: 'local',
        secretNames: names,
        imageDigest: `sha256:${'ef'.repeat(32)}`,
        ttlMs: 600_000,
      },
      signing,
    );

    const transports: Transport[] = Array.from({ length: CONNECTIONS }, () =>
      createMtlsTransport({ baseUrl: url, server: expectedService('secrets'), tls: node }),
    );
    const resolvers = transports.map((t) => createClient(SecretsService, t));
    const health = transports.map((t) => createClient(Health, t));
    const resolveCall = async (worker: number) => {
      const res = await (resolvers[worker % CONNECTIONS] as (typeof resolvers)[number]).resolveSecrets({ grant });
      if (res.secrets.length !== SECRETS_PER_GRANT) throw new Error(`resolved ${res.secrets.length} secrets, expected ${SECRETS_PER_GRANT}`);
      for (const secret of res.secrets) secret.value.fill(0);
    };
    const echoCall = (worker: number) => (health[worker % CONNECTIONS] as (typeof health)[number]).check({ service: '' });

    const serverCpu = () => processCpuMs(service.child.pid);
    const warmup = new Samples();
    await warmup.slice(CONCURRENCY, WARMUP_MS, echoCall, serverCpu);
    await warmup.slice(CONCURRENCY, WARMUP_MS, resolveCall, serverCpu);
    // Alternating short slices, so both kinds see the same load from whatever else runs on the machine.
    const echoSamples = new Samples();
    const resolveSamples = new Samples();
    for (let i = 0; i < ROUNDS; i++) {
      await echoSamples.slice(CONCURRENCY, SLICE_MS, echoCall, serverCpu);
      await resolveSamples.slice(CONCURRENCY, SLICE_MS, resolveCall, serverCpu);
    }
    const echo = echoSamples.summary();
    const resolved = resolveSamples.summary();

    const setters = Array.from({ length: SET_CONCURRENCY }, () =>
      createClient(SecretsService, createMtlsTransport({ baseUrl: url, server: expectedService('secrets'), tls: admin })),
    );
    const setCall = (worker: number) =>
      (setters[worker] as (typeof setters)[number]).setSecret({
        scope: { kind: SecretScopeKind.APP, app: 'bench' },
        name: `BENCH_WRITE_${worker}`,
        value: randomBytes(32),
      });
    const setSamples = new Samples();
    await setSamples.slice(SET_CONCURRENCY, SET_MEASURE_MS, setCall, serverCpu);
    const set = setSamples.summary();

    const echoName = `echo (grpc.health.v1.Health/Check), ${CONCURRENCY} callers`;
    return [
      { name: echoName, value: round(echo.perSecond), unit: 'calls/s' },
      { name: 'echo p50 latency', value: round(echo.p50Ms, 2), unit: 'ms' },
      { name: 'echo p99 latency', value: round(echo.p99Ms, 2), unit: 'ms' },
      {
        name: RESOLVE_NAME,
        value: round(resolved.perSecond),
        unit: 'calls/s',
        baseline: { name: echoName, value: round(echo.perSecond) },
        target: TARGET,
      },
      { name: 'ResolveSecrets p50 latency', value: round(resolved.p50Ms, 2), unit: 'ms', baseline: { name: 'echo p50', value: round(echo.p50Ms, 2) } },
      { name: 'ResolveSecrets p99 latency', value: round(resolved.p99Ms, 2), unit: 'ms', baseline: { name: 'echo p99', value: round(echo.p99Ms, 2) } },
      echo.cpuPerCallUs === undefined || resolved.cpuPerCallUs === undefined
        ? { name: 'server CPU per ResolveSecrets call', notRun: `/proc/${service.child.pid ?? '?'}/stat is not readable here` }
        : {
            name: 'server CPU per ResolveSecrets call',
            value: round(resolved.cpuPerCallUs, 0),
            unit: 'us',
            baseline: { name: 'per echo call', value: round(echo.cpuPerCallUs, 0) },
          },
      { name: `SetSecret, ${SET_CONCURRENCY} writers`, value: round(set.perSecond), unit: 'calls/s' },
      { name: 'SetSecret p50 latency', value: round(set.p50Ms, 2), unit: 'ms' },
    ];
  } finally {
    service.child.kill('SIGTERM');
    await service.exited;
    await database.drop();
    await rm(home, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
