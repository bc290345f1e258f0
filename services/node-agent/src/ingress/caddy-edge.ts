// The node's edge proxy: one Caddy process owned by the node agent, configured only through its
// admin API on a Unix socket in a private directory (mode 0700). Every change replaces the whole
// config in one POST /load, which Caddy applies without dropping connections in flight.

import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@shellwego/kit/log';
import { findExecutable, type ServiceProcess, startServiceProcess } from '@shellwego/kit/process';
import { caddyConfig } from './caddy-config.js';
import type { IngressListen, IngressRoute, IngressTls } from './ingress-routes.js';

export class IngressError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'IngressError';
  }
}

export interface CaddyEdgeOptions {
  /** Private directory for the admin socket and Caddy's storage (certificates, ACME account). */
  readonly dir: string;
  readonly listen: IngressListen;
  readonly tls: IngressTls;
  readonly log: Logger;
  /** The caddy binary; default `caddy` on PATH (Debian's caddy package). */
  readonly binary?: string;
}

const READY_TIMEOUT_MS = 15_000;

export class CaddyEdge {
  private constructor(
    private readonly options: CaddyEdgeOptions,
    private readonly process: ServiceProcess,
    private readonly adminSocket: string,
  ) {}

  /** Starts Caddy with an empty route table and waits until its admin API answers. */
  static async start(options: CaddyEdgeOptions): Promise<CaddyEdge> {
    const binary = findExecutable(options.binary ?? 'caddy');
    if (binary === undefined)
      throw new IngressError(`no caddy binary (${options.binary ?? 'caddy'} on PATH): install Debian's caddy package (deploy/setup-host.sh does)`);
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    const adminSocket = join(options.dir, 'admin.sock');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: options.dir,
      XDG_DATA_HOME: join(options.dir, 'data'),
      XDG_CONFIG_HOME: join(options.dir, 'config'),
    };
    const log = options.log.child({ component: 'caddy' });
    // The first config holds only the admin endpoint, so nothing listens before routes exist.
    const initial = join(options.dir, 'initial.json');
    await writeFile(initial, JSON.stringify({ admin: { listen: `unix/${adminSocket}` } }), { mode: 0o600 });
    const child = startServiceProcess('caddy', [binary, 'run', '--config', initial], env, (line) => log.debug({ line }, 'caddy'));
    const edge = new CaddyEdge(options, child, adminSocket);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.child.exitCode !== null) throw new IngressError(`caddy exited with ${child.child.exitCode} before its admin API answered`);
      try {
        await edge.admin('GET', '/config/');
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new IngressError(`caddy's admin API did not answer on ${adminSocket} within ${READY_TIMEOUT_MS} ms`, { cause: error });
        await sleep(100);
      }
    }
    log.info({ adminSocket, listen: options.listen, tls: options.tls.mode }, 'edge proxy started');
    return edge;
  }

  /** Replaces the whole route table. */
  async apply(routes: readonly IngressRoute[]): Promise<void> {
    const config = caddyConfig(routes, this.options.listen, this.options.tls, this.adminSocket);
    await this.admin('POST', '/load', JSON.stringify(config));
    this.options.log.info({ apps: routes.map((r) => r.app), hosts: routes.reduce((n, r) => n + r.hosts.length, 0) }, 'edge routes applied');
  }

  /** The root certificate of Caddy's local CA (TLS mode `internal`), for clients to trust in development. */
  async internalRoot(): Promise<string> {
    const ca = JSON.parse(await this.admin('GET', '/pki/ca/local')) as { root_certificate?: string };
    if (!ca.root_certificate) throw new IngressError("caddy's local CA has no root certificate yet");
    return ca.root_certificate;
  }

  /** The config Caddy runs now. */
  async currentConfig(): Promise<unknown> {
    return JSON.parse(await this.admin('GET', '/config/'));
  }

  async stop(): Promise<void> {
    if (this.process.child.exitCode === null) this.process.child.kill('SIGTERM');
    await this.process.exited;
  }

  // Caddy admits an admin request on a Unix socket only with an empty Host header.
  private admin(method: 'GET' | 'POST', path: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.adminSocket, method, path, setHost: false, headers: { host: '', ...(body ? { 'content-type': 'application/json' } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 400)
              reject(new IngressError(`caddy admin ${method} ${path} answered ${res.statusCode}: ${text.trim().slice(0, 500)}`));
            else resolve(text);
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
