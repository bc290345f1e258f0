// A real Prometheus server (Debian's prometheus package) for a test: its own configuration,
// storage in a temporary directory, a free port on loopback; instant queries over its HTTP API.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@shellwego/testing/free-port';
import { execa, type ResultPromise } from 'execa';

interface QueryResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown[] };
}

export class Prometheus {
  private constructor(
    private readonly child: ResultPromise,
    private readonly dir: string,
    readonly url: string,
  ) {}

  static async start(config: string): Promise<Prometheus> {
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-prometheus-'));
    await writeFile(join(dir, 'prometheus.yml'), config);
    const port = await freePort();
    const child = execa(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { reject: false, all: true },
    );
    const server = new Prometheus(child, dir, `http://127.0.0.1:${port}`);
    const until = Date.now() + 30_000;
    for (;;) {
      const ready = await fetch(`${server.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return server;
      if (Date.now() > until || child.exitCode !== null) {
        await server.stop();
        throw new Error(`prometheus did not become ready: ${(await child).all ?? ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The result vector of an instant query; throws when Prometheus refuses the expression. */
  async query(expr: string): Promise<unknown[]> {
    const response = (await (await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as QueryResponse;
    if (response.status !== 'success') throw new Error(`prometheus refused ${expr}: ${response.error ?? response.status}`);
    return response.data?.result ?? [];
  }

  /** Polls `expr` until it returns a non-empty result. */
  async waitFor(expr: string, timeoutMs: number): Promise<unknown[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const result = await this.query(expr);
      if (result.length > 0) return result;
      if (Date.now() > until) throw new Error(`no result for ${expr} within ${timeoutMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.child;
    await rm(this.dir, { recursive: true, force: true });
  }
}
