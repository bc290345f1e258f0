import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevPki, ensureDevPki } from '@shellwego/kit/pki';
import { type ServiceProcess, waitServing } from '@shellwego/kit/process';
import { type ExpectedServer, expectedService, type TlsMaterial } from '@shellwego/kit/rpc';
import { freePort } from './free-port.js';
import { startService } from './service-process.js';

export type PlatformService = 'scheduler' | 'secrets' | 'registry' | 'node-agent';

const envPrefix: Record<PlatformService, string> = {
  scheduler: 'SHELLWEGO_SCHEDULER_',
  secrets: 'SHELLWEGO_SECRETS_',
  registry: 'SHELLWEGO_REGISTRY_',
  'node-agent': 'SHELLWEGO_NODE_AGENT_',
};

export interface RunningService {
  readonly name: PlatformService;
  readonly url: string;
  readonly port: number;
  /** Every line the process printed so far (JSON log lines and anything else). */
  readonly lines: string[];
  readonly process: ServiceProcess;
}

/**
 * Real service processes for a test: a fresh $SHELLWEGO_HOME with a dev PKI,
 * each service on a free port, started exactly as `npm start` starts them.
 */
/**
 * How long a started service may take to answer SERVING: a few seconds on an idle machine, but
 * PGlite's start is CPU-bound and a loaded 2-core CI host has been seen to need a minute.
 */
export const SERVING_DEADLINE_MS = 120_000;

/** Who must answer at a service's URL: the control service itself, or some node for a node agent. */
export function expectedServerOf(service: PlatformService): ExpectedServer {
  return service === 'node-agent' ? { kind: 'node' } : expectedService(service);
}

export class TestPlatform {
  private constructor(
    readonly home: string,
    readonly pki: DevPki,
    readonly admin: TlsMaterial,
    private readonly running: Map<PlatformService, RunningService>,
    private readonly ownsHome: boolean,
    private baseEnv: Record<string, string> = {},
    private readonly extras = new Map<string, RunningService & { readonly env: Record<string, string> }>(),
  ) {}

  static async start(options: {
    services: readonly PlatformService[];
    home?: string;
    /** Extra env for every process; as a function, it gets the URL of each service started here. */
    env?: Record<string, string> | ((urls: Partial<Record<PlatformService, string>>) => Record<string, string>);
  }): Promise<TestPlatform> {
    const home = options.home ?? (await mkdtemp(join(tmpdir(), 'shellwego-test-')));
    const pki = await ensureDevPki(home);
    const admin = {
      caPem: await readFile(pki.caCert, 'utf8'),
      certPem: await readFile(pki.admin.cert, 'utf8'),
      keyPem: await readFile(pki.admin.key, 'utf8'),
    };
    const platform = new TestPlatform(home, pki, admin, new Map(), options.home === undefined);
    const ports = new Map<PlatformService, number>();
    for (const name of options.services) ports.set(name, await freePort());
    const urlEnv: Record<string, string> = {};
    const urls: Partial<Record<PlatformService, string>> = {};
    for (const [name, port] of ports) {
      urls[name] = `https://127.0.0.1:${port}`;
      urlEnv[`SHELLWEGO_${name.replace('-', '_').toUpperCase()}_URL`] = `https://127.0.0.1:${port}`;
    }
    // With a scheduler here, the others follow its revocations as they do under `npm start`.
    const feedEnv: Record<string, string> =
      urls.scheduler === undefined ? {} : { SHELLWEGO_SECRETS_REVOCATION_FEED: urls.scheduler, SHELLWEGO_REGISTRY_REVOCATION_FEED: urls.scheduler };
    platform.baseEnv = { ...urlEnv, ...feedEnv, ...(typeof options.env === 'function' ? options.env(urls) : options.env) };
    for (const name of options.services) await platform.launch(name, ports.get(name) as number);
    await platform.waitServing(options.services);
    return platform;
  }

  private async launch(name: PlatformService, port: number, env: Record<string, string> = {}, key: string = name): Promise<void> {
    const lines: string[] = [];
    const child = await startService(
      name,
      { ...process.env, ...this.baseEnv, ...env, SHELLWEGO_HOME: this.home, [`${envPrefix[name]}LISTEN`]: `127.0.0.1:${port}` },
      (line) => lines.push(line),
    );
    const running = { name, url: `https://127.0.0.1:${port}`, port, lines, process: child };
    if (key === name) this.running.set(name, running);
    else this.extras.set(key, { ...running, env });
  }

  /**
   * Starts one more process of a service (e.g. another node agent) under its own key, on a
   * free port, and waits until it serves. Its lines count in allLines() and stop() stops it.
   */
  async addProcess(key: string, name: PlatformService, env: Record<string, string> = {}): Promise<RunningService> {
    if (this.extras.has(key) || (this.running as Map<string, RunningService>).has(key)) throw new Error(`process ${key} exists already`);
    await this.launch(name, await freePort(), env, key);
    const added = this.extra(key);
    const never = new AbortController().signal;
    if (!(await waitServing(added.url, expectedServerOf(name), this.admin, SERVING_DEADLINE_MS, never))) {
      throw new Error(`${key} did not become SERVING:\n${added.lines.slice(-20).join('\n')}`);
    }
    return added;
  }

  /** A process started with addProcess. */
  extra(key: string): RunningService {
    const found = this.extras.get(key);
    if (!found) throw new Error(`no process ${key} in this test platform`);
    return found;
  }

  /** Stops a process started with addProcess and waits for it to exit. */
  async stopProcess(key: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
    const running = this.extra(key);
    running.process.child.kill(signal);
    return running.process.exited;
  }

  /** Starts a stopped addProcess process again on its port, with its env plus `env`; its earlier lines are kept. */
  async restartProcess(key: string, env: Record<string, string> = {}): Promise<RunningService> {
    const previous = this.extras.get(key);
    if (!previous) throw new Error(`no process ${key} in this test platform`);
    await this.launch(previous.name, previous.port, { ...previous.env, ...env }, key);
    const restarted = this.extra(key);
    restarted.lines.unshift(...previous.lines);
    const never = new AbortController().signal;
    if (!(await waitServing(restarted.url, expectedServerOf(restarted.name), this.admin, SERVING_DEADLINE_MS, never))) {
      throw new Error(`${key} did not become SERVING again:\n${restarted.lines.slice(-20).join('\n')}`);
    }
    return restarted;
  }

  private async waitServing(names: readonly PlatformService[]): Promise<void> {
    const never = new AbortController().signal;
    const results = await Promise.all(names.map((n) => waitServing(this.service(n).url, expectedServerOf(n), this.admin, SERVING_DEADLINE_MS, never)));
    const failed = names.filter((_, i) => !results[i]);
    if (failed.length > 0) {
      const detail = failed.map((n) => `--- ${n} ---\n${this.service(n).lines.slice(-20).join('\n')}`).join('\n');
      await this.stop();
      throw new Error(`services did not become SERVING: ${failed.join(', ')}\n${detail}`);
    }
  }

  service(name: PlatformService): RunningService {
    const running = this.running.get(name);
    if (!running) throw new Error(`${name} is not part of this test platform`);
    return running;
  }

  url(name: PlatformService): string {
    return this.service(name).url;
  }

  /** Where a service (or a process added by key) serves its Prometheus metrics, from its "metrics served" log line. */
  metricsUrl(name: PlatformService | string): string {
    const running = this.running.get(name as PlatformService) ?? this.extra(name);
    const served = running.lines.map((line) => parseLogLine(line)).findLast((entry) => entry?.msg === 'metrics served' && typeof entry.url === 'string');
    if (served === undefined) throw new Error(`${name} has not logged a "metrics served" line`);
    return served.url as string;
  }

  /** Every line every process printed, for canary searches. */
  allLines(): string[] {
    return [...this.running.values(), ...this.extras.values()].flatMap((s) => s.lines);
  }

  /** Stops one service with SIGTERM (or SIGKILL) and waits for it to exit. */
  async stopService(name: PlatformService, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
    const running = this.service(name);
    running.process.child.kill(signal);
    return running.process.exited;
  }

  /** Starts a stopped service again on the same port and home. */
  async restartService(name: PlatformService, env: Record<string, string> = {}): Promise<void> {
    const previous = this.service(name);
    await this.launch(name, previous.port, env);
    await this.waitServing([name]);
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.running.values(), ...this.extras.values()].map(async (s) => {
        if (s.process.child.exitCode === null && s.process.child.signalCode === null) s.process.child.kill('SIGTERM');
        await s.process.exited;
      }),
    );
    if (this.ownsHome) await rm(this.home, { recursive: true, force: true });
  }
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
