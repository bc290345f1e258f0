// The 2 GB server, proven: `npm start` runs inside a memory cgroup limited to 2 GiB for
// everything it starts (npm, the launcher, the services, Postgres, the node agent and the app it
// runs), an app with a secret is deployed through the CLI, reaches HEALTHY and prints the
// secret's hash; the OOM killer killed nothing and the limit was never hit. The node agent runs
// the process driver, so no VM boots. The cgroup is removed afterwards, also on failure; a host
// where none can be made fails the run in strict mode, saying why.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { isRunning } from '@shellwego/kit/process';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import type { EventStream } from '@shellwego/testing/scheduler/event-stream';
import { describe, expect, it } from 'vitest';
import { canaryImageArchive, canaryLine } from '../e2e/support/canary-image.js';
import { instanceReached } from '../e2e/support/instance-watch.js';
import { MemoryCgroup } from './support/memory-cgroup.js';
import { NpmStart, platformPortsBusy, shellwego } from './support/npm-start.js';
import { followEvents, localNodeReady } from './support/platform-admin.js';

const TWO_GIB = 2 * 1024 * 1024 * 1024;
const skip = MemoryCgroup.unavailable() ?? busyboxMissing();
if (skip !== undefined) console.warn(`[two-gib-server] SKIPPING: ${skip}`);

describe.skipIf(skip !== undefined)(`npm start on a 2 GiB server${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('runs the platform and an app with a secret to HEALTHY inside a 2 GiB memory cgroup, with nothing OOM-killed', { timeout: 600_000 }, async () => {
    const busy = await platformPortsBusy();
    if (busy !== undefined) throw new Error(busy);
    const cgroup = MemoryCgroup.create('shellwego-test', TWO_GIB);
    const home = await mkdtemp(join(tmpdir(), 'sw2g-'));
    let launch: NpmStart | undefined;
    let events: EventStream | undefined;
    try {
      launch = NpmStart.start({
        home,
        cgroupProcs: cgroup.procsFile,
        // No VM: the app runs as host processes below the node agent (and so in the cgroup too).
        env: { SHELLWEGO_NODE_AGENT_VM_DRIVER: 'process', SHELLWEGO_DATABASE_URL: '' },
      });
      await launch.waitFor('shellwego is up', 300_000);
      // Everything npm start runs is charged to the cgroup.
      const tree = launch.tree();
      const charged = cgroup.pids();
      expect(tree.filter((pid) => !charged.includes(pid) && isRunning(pid))).toEqual([]);
      await localNodeReady(home, 60_000);
      events = await followEvents(home);

      const archive = join(home, 'canary.tar');
      await writeFile(archive, await canaryImageArchive('canary:1'));
      const imported = await shellwego(home, ['image', 'import', archive]);
      expect(imported.exitCode, imported.stderr).toBe(0);
      const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
      const set = await shellwego(home, ['secret', 'set', 'CANARY', '--app', 'canary'], canary);
      expect(set.exitCode, set.stderr).toBe(0);
      const port = await freePort();
      const deploy = await shellwego(home, [
        'app',
        'deploy',
        'canary',
        '--image',
        'canary:1',
        '--secret',
        'CANARY',
        '--env',
        `PORT=${port}`,
        '--health',
        `tcp:${port}`,
        '--memory',
        '64Mi',
        '--cpu',
        '250m',
      ]);
      expect(deploy.exitCode, deploy.stderr).toBe(0);
      const healthy = await instanceReached(events, 'canary', InstanceState.HEALTHY, 120_000);
      expect(await logsUntil(home, canaryLine(canary), 20_000)).toContain(canaryLine(canary));

      const removed = await shellwego(home, ['app', 'rm', 'canary']);
      expect(removed.exitCode, removed.stderr).toBe(0);
      await events.waitFor(
        (e) => e.instanceId === healthy.instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPED,
        60_000,
        'the canary instance STOPPED',
      );
      await events.close();
      events = undefined;

      const { exit, leftovers } = await launch.stop();
      expect([0, 'SIGINT']).toContain(exit);
      expect(leftovers).toEqual([]);
      expect(launch.lines.join('\n')).toContain('shellwego: stopped');
      expect(launch.lines.join('\n')).not.toMatch(/exited unexpectedly/);

      const memory = cgroup.memory();
      console.log(
        `[two-gib-server] cgroup ${cgroup.dir}: peak ${memory.peakMiB?.toFixed(1) ?? '?'} MiB of ${TWO_GIB / 1024 / 1024} MiB (page cache included), OOM kills ${memory.oomKills}, limit hits ${memory.limitHits}`,
      );
      expect(memory.oomKills).toBe(0);
      expect(memory.limitHits).toBe(0);
    } finally {
      await events?.close();
      launch?.kill();
      await cgroup.remove();
      await rm(home, { recursive: true, force: true });
    }
  });
});

/** `shellwego logs canary` until its output holds `text` (the workload prints it once it starts). */
async function logsUntil(home: string, text: string, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const logs = await shellwego(home, ['logs', 'canary']);
    if (logs.exitCode === 0 && logs.stdout.includes(text)) return logs.stdout;
    if (Date.now() > until) throw new Error(`"${text}" not in the canary's output within ${timeoutMs / 1000} s:\n${logs.stdout}${logs.stderr}`);
    await sleep(500);
  }
}
