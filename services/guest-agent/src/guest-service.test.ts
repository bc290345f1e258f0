// GuestService in process mode over a real Unix socket: the agent as the process driver runs it.

import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { type HealthCheck, HealthCheckSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { GuestService, RunRequestSchema, type WaitResponse } from '@shellwego/contracts/guest/v1/guest_pb';
import { createLogger } from '@shellwego/kit/log';
import { SecretBytes } from '@shellwego/kit/secret-bytes';
import { createGuestTransport, type GuestChannelServer, type GuestTransport, serveGuestChannel } from '@shellwego/kit/vm-channel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { guestServiceRoutes } from './guest-service.js';
import { WorkloadSupervisor } from './supervisor.js';

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

interface Agent {
  client: Client<typeof GuestService>;
  supervisor: WorkloadSupervisor;
  logText: () => string;
}

let dir: string;
let cleanups: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'guest-agent-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) {
    await cleanup();
  }
  cleanups = [];
  await rm(dir, { recursive: true, force: true });
});

async function startAgent(gracePeriodMs = 2000): Promise<Agent> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  const log = createLogger({ service: 'guest-agent', destination: sink, level: 'debug' });
  const supervisor = new WorkloadSupervisor({
    log,
    stateDir: join(dir, 'state'),
    busybox: '/bin/busybox',
    defaultRootfsDevice: undefined,
    gracePeriodMs,
    outputBufferBytes: 64 * 1024,
  });
  const path = join(dir, 'agent.sock');
  const server: GuestChannelServer = await serveGuestChannel(guestServiceRoutes(supervisor), { kind: 'unix', path });
  const transport: GuestTransport = createGuestTransport({ kind: 'unix', path });
  cleanups.push(async () => {
    transport.close();
    await supervisor.shutdown();
    await server.close();
  });
  return { client: createClient(GuestService, transport), supervisor, logText: () => Buffer.concat(chunks).toString('utf8') };
}

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Follows Wait, collecting events until `until` says stop (default: the first exit). */
async function follow(
  client: Client<typeof GuestService>,
  until: (events: WaitResponse[]) => boolean = (events) => events.some((e) => e.event.case === 'exited'),
): Promise<WaitResponse[]> {
  const events: WaitResponse[] = [];
  const abort = new AbortController();
  try {
    for await (const event of client.wait({}, { signal: abort.signal })) {
      events.push(event);
      if (until(events)) {
        abort.abort();
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) {
      throw err;
    }
  }
  return events;
}

function stdoutOf(events: WaitResponse[]): string {
  return events.flatMap((e) => (e.event.case === 'output' && e.event.value.stream === 1 ? [Buffer.from(e.event.value.data).toString()] : [])).join('');
}

function codeOf(err: unknown): Code {
  return ConnectError.from(err).code;
}

async function filesContaining(root: string, needle: Buffer): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      if ((await readFile(path)).includes(needle)) {
        hits.push(path);
      }
    }
  }
  return hits;
}

describe('Run', () => {
  it('merges env over secret_env (explicit env wins), passes nothing else, and never logs or writes a secret', async () => {
    const agent = await startAgent();
    const canary = `canary-${randomBytes(16).toString('hex')}`;
    const path = await script(
      'env.sh',
      [
        'printf "CANARY=%s\\n" "$(printf %s "$CANARY" | sha256sum | cut -d" " -f1)"',
        'printf "SHARED=%s\\n" "$(printf %s "$SHARED" | sha256sum | cut -d" " -f1)"',
        'printf "PLAIN=%s\\n" "$PLAIN"',
        'printf "NAMES=%s\\n" "$(env | cut -d= -f1 | sort | tr "\\n" " ")"',
      ].join('\n'),
    );
    const run = await agent.client.run(
      create(RunRequestSchema, {
        argv: [path],
        env: { SHARED: 'explicit', PLAIN: 'plain value' },
        secretEnv: { CANARY: Buffer.from(canary), SHARED: Buffer.from('from-the-secret') },
        workdir: dir,
      }),
    );
    expect(run.pid).toBeGreaterThan(0);
    const events = await follow(agent.client);
    const lines = Object.fromEntries(
      stdoutOf(events)
        .trim()
        .split('\n')
        .map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    expect(lines.CANARY).toBe(sha256(canary));
    expect(lines.SHARED).toBe(sha256('explicit'));
    expect(lines.PLAIN).toBe('plain value');
    const names = (lines.NAMES ?? '').trim().split(' ');
    expect(names).toEqual(expect.arrayContaining(['CANARY', 'PATH', 'PLAIN', 'SHARED']));
    // Nothing of the agent's own environment leaks into the workload.
    expect(names.filter((n: string) => n in process.env && !['PATH', 'PWD', 'SHLVL', '_'].includes(n))).toEqual([]);

    expect(agent.logText()).toContain('workload started');
    expect(agent.logText()).not.toContain(canary);
    expect(agent.logText()).not.toContain(Buffer.from(canary).toString('base64'));
    expect(await filesContaining(dir, Buffer.from(canary))).toEqual([]);
  });

  it('rejects a second Run while the workload runs, an empty argv, and a missing binary', async () => {
    const agent = await startAgent();
    expect(codeOf(await agent.client.run(create(RunRequestSchema, { argv: [] })).catch((e: unknown) => e))).toBe(Code.InvalidArgument);
    const missing = await agent.client.run(create(RunRequestSchema, { argv: ['/no/such/binary', 'x'] })).catch((e: unknown) => e);
    expect(codeOf(missing)).toBe(Code.NotFound);
    expect(ConnectError.from(missing).rawMessage).toContain('/no/such/binary');
    const notOnPath = await agent.client.run(create(RunRequestSchema, { argv: ['no-such-command-anywhere'] })).catch((e: unknown) => e);
    expect(codeOf(notOnPath)).toBe(Code.NotFound);
    expect(codeOf(await agent.client.run(create(RunRequestSchema, { argv: ['/bin/true'], workdir: 'relative' })).catch((e: unknown) => e))).toBe(
      Code.InvalidArgument,
    );

    await agent.client.run(create(RunRequestSchema, { argv: ['/bin/sh', '-c', 'exec sleep 30'] }));
    const second = await agent.client.run(create(RunRequestSchema, { argv: ['/bin/true'] })).catch((e: unknown) => e);
    expect(codeOf(second)).toBe(Code.FailedPrecondition);
    expect(ConnectError.from(second).rawMessage).toMatch(/already running/);
  });

  it('wipes the secret buffers it was given, whether the start succeeds or fails', async () => {
    const agent = await startAgent();
    const ok = SecretBytes.copyOf(Buffer.from('value-one'));
    await agent.supervisor.run({ argv: ['/bin/true'], env: {}, workdir: '', user: '', healthCheck: undefined, rootfsDevice: '' }, new Map([['A', ok]]));
    expect(ok.isWiped).toBe(true);
    await follow(agent.client);
    const failed = SecretBytes.copyOf(Buffer.from('value-two'));
    await expect(
      agent.supervisor.run({ argv: ['/nope'], env: {}, workdir: '', user: '', healthCheck: undefined, rootfsDevice: '' }, new Map([['B', failed]])),
    ).rejects.toThrow(/not found/);
    expect(failed.isWiped).toBe(true);
  });
});

describe('Wait', () => {
  it('streams started, stdout and stderr bytes, and the exit code; a late caller gets the buffered events', async () => {
    const agent = await startAgent();
    const path = await script('out.sh', 'printf "to stdout\\n"; printf "to stderr\\n" >&2; exit 3');
    const { pid } = await agent.client.run(create(RunRequestSchema, { argv: [path] }));
    for (const events of [await follow(agent.client), await follow(agent.client)]) {
      const started = events.find((e) => e.event.case === 'started');
      const exited = events.find((e) => e.event.case === 'exited');
      expect(started?.event.value).toMatchObject({ pid });
      expect(exited?.event.value).toMatchObject({ pid, exitCode: 3, signal: '' });
      expect(events[0]?.event.case).toBe('started');
      expect(events.at(-1)?.event.case).toBe('exited');
      expect(stdoutOf(events)).toBe('to stdout\n');
      const stderr = events.flatMap((e) => (e.event.case === 'output' && e.event.value.stream === 2 ? [Buffer.from(e.event.value.data).toString()] : []));
      expect(stderr.join('')).toBe('to stderr\n');
    }
  });
});

describe('Signal', () => {
  it('delivers the signal, reports it in the exit, and kills what the workload left behind', async () => {
    const agent = await startAgent();
    expect(codeOf(await agent.client.signal({ signal: 'SIGTERM' }).catch((e: unknown) => e))).toBe(Code.FailedPrecondition);
    const path = await script('sig.sh', 'sleep 300 & echo "child $!"; wait');
    const { pid } = await agent.client.run(create(RunRequestSchema, { argv: [path] }));
    const before = await follow(agent.client, (events) => stdoutOf(events).includes('\n'));
    const childPid = Number(/child (\d+)/.exec(stdoutOf(before))?.[1]);
    expect(childPid).toBeGreaterThan(0);
    expect(codeOf(await agent.client.signal({ signal: 'SIGNOPE' }).catch((e: unknown) => e))).toBe(Code.InvalidArgument);
    await agent.client.signal({ signal: 'TERM' });
    const events = await follow(agent.client);
    expect(events.find((e) => e.event.case === 'exited')?.event.value).toMatchObject({ pid, signal: 'SIGTERM' });
    expect(await isGone(childPid)).toBe(true);
    const health = await agent.client.health({});
    expect(health).toMatchObject({ agentAlive: true, workloadRunning: false, healthy: false });
    expect(health.detail).toContain('SIGTERM');
    // Its own figures for the host's metrics: the kernel's memory and the agent's resident memory.
    expect(health.figures?.memoryTotalBytes).toBeGreaterThan(health.figures?.memoryAvailableBytes ?? 0n);
    expect(health.figures?.memoryAvailableBytes).toBeGreaterThan(0n);
    expect(health.figures?.agentResidentBytes).toBeGreaterThan(1024n * 1024n);
  });
});

describe('Health', () => {
  it('runs TCP, HTTP and exec probes against the running workload', async () => {
    const agent = await startAgent();
    const port = await freePort();
    const server = [
      "const http = require('node:http');",
      "http.createServer((req, res) => { res.statusCode = req.url === '/healthz' ? 204 : 500; res.end(); })",
      `  .listen(${port}, '127.0.0.1', () => console.log('listening'));`,
    ].join('\n');
    const check = (probe: MessageInitShape<typeof HealthCheckSchema>['probe']): HealthCheck => create(HealthCheckSchema, { timeout: { seconds: 2n }, probe });

    expect(await agent.client.health({})).toMatchObject({ agentAlive: true, workloadRunning: false, healthy: false });
    await agent.client.run(create(RunRequestSchema, { argv: [process.execPath, '-e', server], healthCheck: check({ case: 'tcp', value: { port } }) }));
    await follow(agent.client, (events) => stdoutOf(events).includes('listening'));
    const tcp = await agent.client.health({});
    expect(tcp).toMatchObject({ agentAlive: true, workloadRunning: true, healthy: true });
    expect(tcp.detail).toContain(`127.0.0.1:${port}`);

    // The same workload under other probes (a restart keeps the spec, so Run again after a stop).
    const cases: Array<[HealthCheck, boolean]> = [
      [check({ case: 'http', value: { port, path: '/healthz' } }), true],
      [check({ case: 'http', value: { port, path: '/broken' } }), false],
      [check({ case: 'exec', value: { argv: ['/bin/sh', '-c', 'exit 0'] } }), true],
      [check({ case: 'exec', value: { argv: ['/bin/sh', '-c', 'exit 7'] } }), false],
      [check({ case: 'tcp', value: { port: await freePort() } }), false],
    ];
    for (const [healthCheck, healthy] of cases) {
      await agent.client.signal({ signal: 'SIGKILL' });
      await follow(agent.client);
      await agent.client.run(create(RunRequestSchema, { argv: [process.execPath, '-e', server], healthCheck }));
      await follow(agent.client, (events) => stdoutOf(events).includes('listening'));
      const health = await agent.client.health({});
      const probe = healthCheck.probe.case;
      expect({ probe, healthy: health.healthy, running: health.workloadRunning, detail: health.detail }).toMatchObject({ probe, healthy, running: true });
    }
  });
});

describe('InjectSecrets', () => {
  it('restarts the workload with the new values', async () => {
    const agent = await startAgent();
    expect(codeOf(await agent.client.injectSecrets({ secretEnv: { TOKEN: Buffer.from('x') } }).catch((e: unknown) => e))).toBe(Code.FailedPrecondition);
    const first = `first-${randomBytes(8).toString('hex')}`;
    const second = `second-${randomBytes(8).toString('hex')}`;
    const path = await script('token.sh', 'echo "token $(printf %s "$TOKEN" | sha256sum | cut -d" " -f1)"; exec sleep 300');
    const run = await agent.client.run(create(RunRequestSchema, { argv: [path], secretEnv: { TOKEN: Buffer.from(first) } }));
    await follow(agent.client, (events) => stdoutOf(events).includes('\n'));
    const injected = await agent.client.injectSecrets({ secretEnv: { TOKEN: Buffer.from(second) } });
    expect(injected.pid).not.toBe(run.pid);
    const events = await follow(agent.client, (seen) => stdoutOf(seen).includes('\n'));
    expect(events[0]?.event).toMatchObject({ case: 'started', value: { pid: injected.pid } });
    expect(stdoutOf(events)).toBe(`token ${sha256(second)}\n`);
    expect(await isGone(run.pid)).toBe(true);
    expect(agent.logText()).not.toContain(first);
    expect(agent.logText()).not.toContain(second);
  });

  it('kills a workload that ignores SIGTERM once the grace period is over', async () => {
    const agent = await startAgent(200);
    const path = await script('stubborn.sh', 'trap "" TERM; echo up; while :; do sleep 1; done');
    const run = await agent.client.run(create(RunRequestSchema, { argv: [path] }));
    await follow(agent.client, (events) => stdoutOf(events).includes('up'));
    const started = Date.now();
    const injected = await agent.client.injectSecrets({ secretEnv: {} });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(injected.pid).not.toBe(run.pid);
    expect(await isGone(run.pid)).toBe(true);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Gone, or a zombie waiting for an init that reaps: either way no longer running. */
async function isGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))) {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}
