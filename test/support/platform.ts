import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki, type DevPki } from '../../lib/pki/index.js';
import type { TlsMaterial } from '../../lib/rpc/index.js';
import { startServiceProcess, type ServiceProcess } from '../../scripts/launcher/service-process.js';
import { waitServing } from '../../scripts/launcher/wait-serving.js';
import { freePort } from './free-port.js';

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
export class TestPlatform {
  private constructor(
    readonly home: string,
    readonly pki: DevPki,
    readonly admin: TlsMaterial,
    private readonly running: Map<PlatformService, RunningService>,
    private readonly ownsHome: boolean,
    private baseEnv: Record<string, string> = {},
  ) {}

  static async start(options: {
    services: readonly PlatformService[];
    home?: string;
    env?: Record<string, string>;
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
    for (const [name, port] of ports) urlEnv[`SHELLWEGO_${name.replace('-', '_').toUpperCase()}_URL`] = `https://127.0.0.1:${port}`;
    platform.baseEnv = { ...urlEnv, ...options.env };
    for (const name of options.services) await platform.launch(name, ports.get(name) as number);
    await platform.waitServing(options.services);
    return platform;
  }

  private async launch(name: PlatformService, port: number, env: Record<string, string> = {}): Promise<void> {
    const lines: string[] = [];
    const child = startServiceProcess(
      name,
      { ...process.env, ...this.baseEnv, ...env, SHELLWEGO_HOME: this.home, [`${envPrefix[name]}LISTEN`]: `127.0.0.1:${port}` },
      (line) => lines.push(line),
    );
    this.running.set(name, { name, url: `https://127.0.0.1:${port}`, port, lines, process: child });
  }

  private async waitServing(names: readonly PlatformService[]): Promise<void> {
    const never = new AbortController().signal;
    const results = await Promise.all(names.map((n) => waitServing(this.service(n).url, this.admin, 60_000, never)));
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

  /** Every line every process printed, for canary searches. */
  allLines(): string[] {
    return [...this.running.values()].flatMap((s) => s.lines);
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
      [...this.running.values()].map(async (s) => {
        if (s.process.child.exitCode === null && s.process.child.signalCode === null) s.process.child.kill('SIGTERM');
        await s.process.exited;
      }),
    );
    if (this.ownsHome) await rm(this.home, { recursive: true, force: true });
  }
}
