import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'cli/bin/shellwego.js');
const run = promisify(execFile);

interface Launch {
  child: ChildProcess;
  output: string[];
  /** npm's exit code, or the signal npm re-raised on itself after its script ended. */
  exited: Promise<number | string | null>;
}

/** `npm start` in its own process group, as a terminal runs it. */
function npmStart(home: string): Launch {
  const child = spawn('npm', ['start'], {
    cwd: root,
    // Never the host's interfaces or nftables rules: npm start would turn the VM network on as root.
    env: { ...process.env, SHELLWEGO_HOME: home, SHELLWEGO_NODE_AGENT_NETWORK: 'false' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return { child, output, exited };
}

async function waitFor(launch: Launch, text: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!launch.output.join('').includes(text)) {
    if (Date.now() > until || launch.child.exitCode !== null) {
      throw new Error(`"${text}" did not appear; output:\n${launch.output.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Ctrl-C: SIGINT to the whole process group. npm ends by re-raising SIGINT
 * on itself once the launcher exited, as it does in a terminal.
 */
async function interrupt(launch: Launch): Promise<number | string | null> {
  process.kill(-(launch.child.pid as number), 'SIGINT');
  return launch.exited;
}

/** True when nothing listens on any of the platform's ports any more. */
async function portsFree(): Promise<boolean> {
  const { createConnection } = await import('node:net');
  const probes = [7401, 7402, 7403, 7404].map(
    (port) =>
      new Promise<boolean>((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('error', () => resolve(true));
      }),
  );
  return (await Promise.all(probes)).every(Boolean);
}

async function status(home: string, ...extra: string[]) {
  const { stdout } = await run(process.execPath, [cli, 'status', '-o', 'json', ...extra], {
    cwd: root,
    env: { ...process.env, SHELLWEGO_HOME: home },
  });
  return JSON.parse(stdout) as { service: string; endpoint: string; status: string }[];
}

const homes: string[] = [];
afterAll(async () => {
  await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })));
});

describe('npm start', () => {
  it('brings up all four services on their ports from a fresh home, stops cleanly, and reuses its state', async () => {
    const home = await mkdtemp(join(tmpdir(), 'shellwego-home-'));
    homes.push(home);

    const first = npmStart(home);
    try {
      await waitFor(first, 'shellwego is up', 120_000);
      expect(await status(home)).toEqual([
        { service: 'scheduler', endpoint: 'https://127.0.0.1:7401', status: 'SERVING' },
        { service: 'secrets', endpoint: 'https://127.0.0.1:7402', status: 'SERVING' },
        { service: 'registry', endpoint: 'https://127.0.0.1:7403', status: 'SERVING' },
        { service: 'node-agent', endpoint: 'https://127.0.0.1:7404', status: 'SERVING' },
      ]);
    } finally {
      expect([0, 'SIGINT']).toContain(await interrupt(first));
    }
    expect(first.output.join('')).toContain('shellwego: stopped');
    expect(first.output.join('')).not.toMatch(/exited unexpectedly|drain timeout/);
    // The launcher says why the VM network is off, and the host got no bridge.
    expect(first.output.join('')).toContain('shellwego: VM network off: SHELLWEGO_NODE_AGENT_NETWORK=false');
    expect((await run('ip', ['link', 'show', 'swg0']).catch((error: { stderr: string }) => error)).stderr).toMatch(/does not exist/);
    expect(await portsFree()).toBe(true);

    for (const key of ['pki/ca.key', 'pki/admin.key', 'pki/services/secrets.key']) {
      expect(((await stat(join(home, key))).mode & 0o777).toString(8), key).toBe('600');
    }
    const server = new X509Certificate(await readFile(join(home, 'pki/services/scheduler.crt')));
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.subjectAltName).toContain('URI:spiffe://shellwego/service/scheduler');
    const caBefore = await readFile(join(home, 'pki/ca.crt'), 'utf8');

    const second = npmStart(home);
    try {
      await waitFor(second, 'shellwego is up', 120_000);
      expect((await status(home)).every((s) => s.status === 'SERVING')).toBe(true);
    } finally {
      expect([0, 'SIGINT']).toContain(await interrupt(second));
    }
    expect(second.output.join('')).toContain('shellwego: stopped');
    expect(await portsFree()).toBe(true);
    expect(await readFile(join(home, 'pki/ca.crt'), 'utf8')).toBe(caBefore);
  }, 300_000);
});

describe('shellwego CLI: PKI', () => {
  it('creates a CA once, issues a user certificate with a role, and refuses to overwrite the CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-ca-'));
    homes.push(dir);
    const ca = join(dir, 'ca.crt');
    const sw = (...args: string[]) => run(process.execPath, [cli, '--ca', ca, ...args], { cwd: root });

    await sw('ca', 'init');
    expect(((await stat(join(dir, 'ca.key'))).mode & 0o777).toString(8)).toBe('600');
    await expect(sw('ca', 'init')).rejects.toMatchObject({ stderr: expect.stringMatching(/already exists; pass --force/) });

    const { stdout } = await sw('cert', 'issue', '--user', 'alice', '--role', 'admin', '--out', dir, '-o', 'json');
    const issued = JSON.parse(stdout) as { cert: string; key: string; serial: string };
    expect(((await stat(issued.key)).mode & 0o777).toString(8)).toBe('600');
    const cert = new X509Certificate(await readFile(issued.cert));
    expect(cert.verify(new X509Certificate(await readFile(ca)).publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('URI:spiffe://shellwego/user/alice');
    expect(cert.subject).toContain('OU=admin');
    expect(cert.serialNumber.toLowerCase()).toBe(issued.serial);

    await expect(sw('cert', 'issue', '--user', 'Bad Name')).rejects.toMatchObject({
      stderr: expect.stringMatching(/not a valid name/),
    });
  }, 60_000);
});
