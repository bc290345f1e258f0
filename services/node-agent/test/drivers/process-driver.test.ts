// The process driver with the real bundled guest agent as a separate process: boot, Run with a
// secret, Wait, adopt from the persisted record by a fresh driver (a simulated agent restart),
// stop, and cleanup of every per-instance file and process.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRunning } from '@shellwego/kit/process';
import { buildGuestAgent } from '@shellwego/testing/guest-agent';
import { capturingLogger } from '@shellwego/testing/logger';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessDriver } from '../../src/drivers/process/process-driver.js';
import { VmDriverError, type VmSpec } from '../../src/drivers/types.js';
import { parseVmRecord } from '../../src/drivers/vm-record.js';
import { filesContaining, type GuestSession, openGuest, runToExit } from './guest-session.js';

const here = dirname(fileURLToPath(import.meta.url));
let dir: string;
let bundle: string;
const sessions: GuestSession[] = [];
const pids: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drv-proc-'));
  bundle = (await buildGuestAgent()).outfile;
});

afterAll(async () => {
  for (const session of sessions) {
    session.transport.close();
  }
  for (const pid of pids) {
    if (isRunning(pid)) {
      process.kill(pid, 'SIGKILL');
    }
  }
  await rm(dir, { recursive: true, force: true });
});

function driver(workloadGraceMs = 2_000): { driver: ProcessDriver; lines: string[] } {
  const { logger, lines } = capturingLogger();
  return { driver: new ProcessDriver({ log: logger, guestAgentBundle: bundle, workloadGraceMs }), lines };
}

function spec(name: string): VmSpec {
  return { instanceId: `${name}-${randomBytes(3).toString('hex')}`, vcpus: 1, memoryMib: 128, rootfsPath: '/nonexistent.ext4', workDir: join(dir, name) };
}

function guest(channel: Parameters<typeof openGuest>[0]): GuestSession {
  const session = openGuest(channel);
  sessions.push(session);
  return session;
}

/** Follows Wait until the workload printed text. */
async function untilOutput(session: GuestSession, text: string): Promise<void> {
  const abort = new AbortController();
  let seen = '';
  try {
    for await (const event of session.client.wait({}, { signal: abort.signal })) {
      if (event.event.case === 'output') {
        seen += Buffer.from(event.event.value.data).toString();
        if (seen.includes(text)) abort.abort();
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  }
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('process driver (real guest agent bundle as a local process)', () => {
  it('boots, runs a workload with a secret, and stops cleanly', async () => {
    const first = driver();
    expect(first.lines.join('\n')).toMatch(/development only.*NO isolation/);
    const vm = await first.driver.boot(spec('life'));
    pids.push(vm.pid);
    expect(vm.channel).toEqual({ kind: 'unix', path: join(vm.workDir, 'guest.sock') });
    expect(readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8').split('\0')[0]).toBe(`shellwego-guest-agent:${vm.instanceId}`);
    expect((await first.driver.list()).map((h) => h.instanceId)).toEqual([vm.instanceId]);

    const canary = randomBytes(16).toString('hex');
    const session = guest(vm.channel);
    expect(await session.client.health({})).toMatchObject({ agentAlive: true, workloadRunning: false });
    const result = await runToExit(session.client, ['/bin/sh', '-c', 'printf %s "$CANARY" | sha256sum | cut -d" " -f1'], {
      CANARY: Buffer.from(canary),
    });
    expect(result).toMatchObject({ stdout: `${sha256(Buffer.from(canary))}\n`, exitCode: 0 });
    console.log(`[process-driver] Run RPC ${result.runMs.toFixed(1)} ms, Run -> first output via Wait ${result.firstOutputMs.toFixed(1)} ms`);
    expect(await filesContaining(dir, Buffer.from(canary))).toEqual([]);
    session.transport.close();

    await first.driver.stop(vm, { graceMs: 5_000 });
    expect(await vm.exited).toEqual({ code: 0, signal: null }); // the guest agent shut down on SIGTERM
    expect(existsSync(vm.workDir)).toBe(false);
    expect(await first.driver.list()).toEqual([]);
  });

  it('adopts a VM whose agent was killed with SIGKILL, serves it, and stops it', async () => {
    // A separate "agent" process boots the VM, prints its record and dies by SIGKILL.
    const instanceId = `orphan-${randomBytes(3).toString('hex')}`;
    const workDir = join(dir, 'orphan');
    const agent = await execa(process.execPath, ['--import', 'tsx', join(here, 'boot-then-die.ts'), instanceId, workDir, bundle], { reject: false });
    expect(agent.signal, agent.stderr).toBe('SIGKILL');
    const record = parseVmRecord(JSON.parse(agent.stdout));
    pids.push(record.pid);
    expect(isRunning(record.pid)).toBe(true);

    const { driver: restarted } = driver();
    const adopted = await restarted.adopt(record);
    expect(adopted.kind).toBe('adopted');
    if (adopted.kind !== 'adopted') return;
    expect(adopted.handle.detail).toMatch(/adopted/);
    expect((await restarted.list()).map((h) => h.instanceId)).toEqual([instanceId]);

    const session = guest(adopted.handle.channel);
    const canary = randomBytes(16).toString('hex');
    const result = await runToExit(session.client, ['/bin/sh', '-c', 'printf %s "$CANARY" | sha256sum | cut -d" " -f1'], {
      CANARY: Buffer.from(canary),
    });
    expect(result.stdout).toBe(`${sha256(Buffer.from(canary))}\n`);
    const run = await session.client.run({ argv: ['/bin/sh', '-c', 'echo up; exec sleep 600'] });
    expect(await session.client.health({})).toMatchObject({ agentAlive: true, workloadRunning: true });
    session.transport.close();

    await restarted.stop(adopted.handle, { graceMs: 5_000 });
    expect(await adopted.handle.exited).toEqual({ code: null, signal: null }); // not our child: no status to read
    expect(isRunning(record.pid)).toBe(false);
    expect(isRunning(run.pid)).toBe(false);
    expect(existsSync(workDir)).toBe(false);
    expect(await restarted.list()).toEqual([]);
    // Stopping again is harmless.
    await restarted.stop(adopted.handle, { graceMs: 100 });
  });

  it('kills the whole tree when the guest agent does not finish within the grace period', async () => {
    const { driver: d } = driver(30_000);
    const vm = await d.boot(spec('stubborn'));
    pids.push(vm.pid);
    const session = guest(vm.channel);
    const run = await session.client.run({ argv: ['/bin/sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'] });
    pids.push(run.pid);
    await untilOutput(session, 'ready'); // the trap is in place
    const started = performance.now();
    await d.stop(vm, { graceMs: 300 });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(isRunning(vm.pid)).toBe(false);
    expect(isRunning(run.pid)).toBe(false);
    expect(existsSync(vm.workDir)).toBe(false);
    expect(await vm.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('adopt reports a dead VM or a recycled pid as gone, removes its files, and leaves the other process alone', async () => {
    const { driver: d } = driver();
    const deadDir = join(dir, 'dead');
    await mkdir(deadDir);
    await writeFile(join(deadDir, 'guest-agent.log'), 'old log\n');
    const dead = await d.adopt({
      driver: 'process',
      instanceId: 'dead-1',
      pid: 2 ** 22 + 7, // above pid_max: never a live process
      channel: { kind: 'unix', path: join(deadDir, 'guest.sock') },
      workDir: deadDir,
      bootedAt: new Date().toISOString(),
    });
    expect(dead).toEqual({ kind: 'gone', reason: expect.stringMatching(/no longer running/) });
    expect(existsSync(deadDir)).toBe(false);

    const otherDir = join(dir, 'recycled');
    await mkdir(otherDir);
    const recycled = await d.adopt({
      driver: 'process',
      instanceId: 'recycled-1',
      pid: process.pid, // alive, but not a guest agent of that instance
      channel: { kind: 'unix', path: join(otherDir, 'guest.sock') },
      workDir: otherDir,
      bootedAt: new Date().toISOString(),
    });
    expect(recycled).toEqual({ kind: 'gone', reason: expect.stringMatching(/another process/) });
    expect(isRunning(process.pid)).toBe(true);
    expect(existsSync(otherDir)).toBe(false);
  });

  it('refuses specs it cannot boot, before starting anything', async () => {
    const { driver: d } = driver();
    const reason = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'booted',
        (err: unknown) => (err instanceof VmDriverError ? `${err.reason}: ${err.message}` : String(err)),
      );
    expect(await reason(d.boot({ ...spec('x'), instanceId: 'bad/id' }))).toMatch(/^invalid-spec: .*letters, digits/);
    expect(await reason(d.boot({ ...spec('x'), workDir: join(dir, 'y'.repeat(120)) }))).toMatch(/^invalid-spec: .*Unix socket limit/);
    const busy = spec('busy');
    await mkdir(busy.workDir);
    await writeFile(join(busy.workDir, 'leftover'), '');
    expect(await reason(d.boot(busy))).toMatch(/^invalid-spec: .*not empty/);
    const missing = new ProcessDriver({ log: capturingLogger().logger, guestAgentBundle: join(dir, 'none.mjs') });
    expect(await reason(missing.boot(spec('nobundle')))).toMatch(/^unavailable: .*build it with/);
    expect(await readdir(dir)).not.toContain('nobundle');
  });
});
