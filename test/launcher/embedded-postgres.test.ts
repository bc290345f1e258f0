// The embedded Postgres of `npm start`: a crash of its postmaster (kill -9) is reported, the
// launcher restarts it, and within a bounded time the services answer again with the data from
// before the crash; a normal stop and start reuses the same cluster. An unreachable external
// database (SHELLWEGO_DATABASE_URL) makes npm start fail with a clear message, no stack trace.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendantsOf, isRunning, readCmdline } from '@shellwego/kit/process';
import { freePort } from '@shellwego/testing/free-port';
import { afterAll, describe, expect, it } from 'vitest';
import { NpmStart, platformPortsBusy, shellwego } from './support/npm-start.js';
import { statOf } from './support/proc-stat.js';

/** After the launcher says the server is back, the first `secret set` that works must come within this. */
const ANSWER_AGAIN_MS = 30_000;

const homes: string[] = [];
const launches: NpmStart[] = [];
afterAll(async () => {
  for (const launch of launches) launch.kill();
  await Promise.all(homes.map((home) => rm(home, { recursive: true, force: true })));
});

async function freshHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'swpg-'));
  homes.push(home);
  return home;
}

async function up(home: string, env: Record<string, string> = { SHELLWEGO_DATABASE_URL: '' }): Promise<NpmStart> {
  const busy = await platformPortsBusy();
  if (busy !== undefined) throw new Error(busy);
  const launch = NpmStart.start({ home, env });
  launches.push(launch);
  return launch;
}

async function stopCleanly(launch: NpmStart): Promise<void> {
  const { exit, leftovers } = await launch.stop();
  expect([0, 'SIGINT']).toContain(exit);
  expect(leftovers).toEqual([]);
  expect(launch.lines.join('\n')).toContain('shellwego: stopped');
}

/** The postmaster: the launcher's child running Postgres's server binary. */
function postmasterOf(launch: NpmStart): number {
  const launcher = launch.launcherPid();
  const pid = descendantsOf(launcher).find((p) => basename(readCmdline(p)?.[0] ?? '') === 'postgres' && statOf(p)?.ppid === launcher);
  if (pid === undefined) throw new Error(`the launcher (pid ${launcher}) runs no postgres`);
  return pid;
}

/** The cluster's identity (pg_control begins with its 64-bit system identifier), so a new initdb would show. */
async function clusterId(home: string): Promise<bigint> {
  return (await readFile(join(home, 'postgres/data/global/pg_control'))).readBigUInt64LE(0);
}

async function setSecret(home: string, name: string): Promise<{ exitCode: number; stderr: string }> {
  return shellwego(home, ['secret', 'set', name], randomBytes(24).toString('hex'));
}

async function secretNames(home: string): Promise<string[]> {
  const list = await shellwego(home, ['secret', 'list', '-o', 'json']);
  expect(list.exitCode, list.stderr).toBe(0);
  return (JSON.parse(list.stdout) as { name: string }[]).map((secret) => secret.name);
}

describe('embedded Postgres under npm start', () => {
  it('restarts a killed postmaster; the services answer again with the data from before; a stop and start reuses the cluster', {
    timeout: 600_000,
  }, async () => {
    const home = await freshHome();
    const first = await up(home);
    await first.waitFor('shellwego is up', 300_000);
    const before = await setSecret(home, 'BEFORE_CRASH');
    expect(before.exitCode, before.stderr).toBe(0);
    const identity = await clusterId(home);

    const postmaster = postmasterOf(first);
    expect(Number((await readFile(join(home, 'postgres/data/postmaster.pid'), 'utf8')).split('\n')[0])).toBe(postmaster);
    const from = first.lines.length;
    process.kill(postmaster, 'SIGKILL');
    // Writes keep coming while the database is down and coming back.
    let down = true;
    const duringOutage: { exitCode: number; stderr: string }[] = [];
    const writer = (async () => {
      for (let i = 0; down; i++) duringOutage.push(await setSecret(home, `DURING_CRASH_${i}`));
    })();
    await first.waitFor('the embedded Postgres exited unexpectedly (SIGKILL)', 10_000, from);
    await first.waitFor('the embedded Postgres is back', 60_000, from);
    down = false;
    await writer;
    // A caller was told to retry (UNAVAILABLE), never that the server broke.
    const failed = duringOutage.filter((r) => r.exitCode !== 0).map((r) => r.stderr.trim());
    expect(failed.filter((stderr) => !/unavailable:/.test(stderr))).toEqual([]);
    console.log(`[embedded-postgres] ${duringOutage.length} secret sets while the database was down or restarting: ${failed.length} answered UNAVAILABLE`);
    const back = Date.now();
    const restarted = postmasterOf(first);
    expect(restarted).not.toBe(postmaster);
    expect(isRunning(postmaster)).toBe(false);

    // The services' pools drop the dead connections and open new ones on their next query.
    let after = await setSecret(home, 'AFTER_CRASH');
    let attempts = 1;
    while (after.exitCode !== 0 && Date.now() - back < ANSWER_AGAIN_MS) {
      expect(after.stderr).toMatch(/unavailable:/);
      await sleep(1_000);
      after = await setSecret(home, 'AFTER_CRASH');
      attempts++;
    }
    expect(after.exitCode, after.stderr).toBe(0);
    console.log(`[embedded-postgres] secret set worked ${Date.now() - back} ms after the restart, on attempt ${attempts}`);
    expect(await secretNames(home)).toEqual(expect.arrayContaining(['BEFORE_CRASH', 'AFTER_CRASH']));
    // The platform stayed up: no service gave up on the database.
    expect(first.lines.slice(from).join('\n')).not.toMatch(/exited unexpectedly \(\d+\)|stopping the platform/);
    expect(await clusterId(home)).toBe(identity);
    await stopCleanly(first);

    // A normal stop leaves a cleanly shut down cluster, which the next start reuses.
    const second = await up(home);
    await second.waitFor('shellwego is up', 300_000);
    await second.waitFor('database system was shut down at', 1_000);
    expect(await clusterId(home)).toBe(identity);
    expect(await secretNames(home)).toEqual(expect.arrayContaining(['BEFORE_CRASH', 'AFTER_CRASH']));
    await stopCleanly(second);
  });

  it('fails with a clear message, no stack trace, when SHELLWEGO_DATABASE_URL names an unreachable database', { timeout: 300_000 }, async () => {
    const home = await freshHome();
    // Nothing listens there: a port that was free a moment ago.
    const url = `postgres://postgres@127.0.0.1:${await freePort()}/shellwego`;
    const launch = await up(home, { SHELLWEGO_DATABASE_URL: url });
    const exit = await launch.untilExit(240_000);
    const output = launch.lines.join('\n');
    expect(exit, output).not.toBe('timeout');
    expect(exit, output).not.toBe(0);
    // The first control service to fail says which database it could not reach (the launcher then stops the others).
    const escaped = url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expect(output).toMatch(new RegExp(`^(secrets|registry|scheduler) .*failed to start: .*(database|Postgres).*${escaped}`, 'm'));
    expect(output).toMatch(/exited unexpectedly \(1\); stopping the platform/);
    expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(output).not.toContain('embedded Postgres');
    expect(output).not.toContain('shellwego is up');
    const { leftovers } = await launch.stop();
    expect(leftovers).toEqual([]);
    expect(await platformPortsBusy()).toBeUndefined();
  });
});
