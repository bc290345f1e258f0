import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { freePort } from '../free-port.js';

export type DistributionAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; file: string }
  | { kind: 'token'; realm: string; service: string; issuer: string; rootCertBundle: string };

export interface DistributionServerOptions {
  /** Where the registry keeps its data; several servers may share one (read-mostly). */
  storageDir: string;
  /** Directory for this server's config file. */
  workDir: string;
  tls?: { certFile: string; keyFile: string; caPem: string };
  auth: DistributionAuth;
}

/**
 * Debian's docker-registry (the CNCF distribution server, 2.8) on a free
 * loopback port, configured by the test: filesystem storage, optional TLS,
 * htpasswd or token auth. Its log lines are kept (the access log shows
 * which blobs were downloaded).
 */
export class DistributionServer {
  private constructor(
    readonly host: string,
    readonly lines: string[],
    private readonly child: ResultPromise,
  ) {}

  static async start(options: DistributionServerOptions): Promise<DistributionServer> {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const name = `registry-${options.auth.kind}-${port}`;
    const configFile = join(options.workDir, `${name}.yml`);
    await writeFile(configFile, configYaml(host, options));
    const child = execa('docker-registry', ['serve', configFile], { reject: false, buffer: false, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    const lines: string[] = [];
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (l) => lines.push(l));
    const server = new DistributionServer(host, lines, child);
    try {
      await waitListening(host, options.tls?.caPem);
    } catch (err) {
      await server.stop();
      throw new Error(`docker-registry did not start: ${(err as Error).message}\n${lines.slice(-20).join('\n')}`);
    }
    return server;
  }

  /** How many times the access log shows a GET of this blob. */
  blobGets(digest: string): number {
    return this.lines.filter((l) => l.includes(`GET /v2/`) && l.includes(`/blobs/${digest}`) && !l.includes('HEAD')).length;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await this.child;
    }
  }
}

function configYaml(host: string, options: DistributionServerOptions): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${options.storageDir}`,
    '  delete:',
    '    enabled: true',
    // No cache: a test corrupts and restores blob files behind the server's back.
    'http:',
    `  addr: ${host}`,
    '  secret: shellwego-test-secret',
  ];
  if (options.tls) lines.push('  tls:', `    certificate: ${options.tls.certFile}`, `    key: ${options.tls.keyFile}`);
  const auth = options.auth;
  if (auth.kind === 'htpasswd') lines.push('auth:', '  htpasswd:', '    realm: shellwego-test', `    path: ${auth.file}`);
  if (auth.kind === 'token') {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${auth.realm}`,
      `    service: ${auth.service}`,
      `    issuer: ${auth.issuer}`,
      `    rootcertbundle: ${auth.rootCertBundle}`,
    );
  }
  lines.push('health:', '  storagedriver:', '    enabled: false');
  return `${lines.join('\n')}\n`;
}

/** Polls GET /v2/ until the server answers at all (200 or 401). */
async function waitListening(host: string, caPem: string | undefined): Promise<void> {
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      const status = await probe(host, caPem);
      if (status === 200 || status === 401) return;
    } catch (err) {
      if (Date.now() > until) throw err;
    }
    if (Date.now() > until) throw new Error(`no answer from ${host}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function probe(host: string, caPem: string | undefined): Promise<number> {
  const req = caPem ? https.get(`https://${host}/v2/`, { ca: caPem }) : http.get(`http://${host}/v2/`);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  res.resume();
  return res.statusCode ?? 0;
}
