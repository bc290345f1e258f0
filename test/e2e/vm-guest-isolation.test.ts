// Inside a REAL VM (qemu driver, TCG), the workload runs in PID and mount namespaces of its own
// and as its image's USER: an app image with `USER app` goes through the registry, the scheduler
// and the node agent to the guest agent's Run. The workload reports what it sees on stdout, read
// back through the node agent: its ids, its pid, every process its /proc lists (the guest agent's
// node process must not be among them) and its secret's sha256 (the environment still arrives).
// Its exec probe must pass inside the namespace as that user for the instance to become HEALTHY,
// and `app rm` must stop it with SIGTERM through the namespace's init, which the guest agent's log
// on the VM console shows as the workload's own exit code.
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { expectNoProcessLeak } from './support/canary-flow.js';
import { canaryLine } from './support/canary-image.js';
import { instanceReached, logsUntil } from './support/instance-watch.js';
import { APP_GID, APP_UID, isolationImageArchive, PROBE_PATH, TERM_EXIT_CODE } from './support/isolation-image.js';
import { NodePlatform, readStateFile } from './support/node-platform.js';
import { missingVmHost } from './support/vm-host.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const skipReason = missingVmHost();
if (skipReason !== undefined) console.warn(`[vm-guest-isolation] SKIPPING the real VM test: ${skipReason}`);

let platform: NodePlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

/** The value of the workload's `isolation-<key>=` line. */
function reported(output: string, key: string): string {
  const line = output.split('\n').find((l) => l.startsWith(`isolation-${key}=`));
  if (line === undefined) throw new Error(`the workload did not report ${key}; its output:\n${output}`);
  return line.slice(`isolation-${key}=`.length);
}

describe.skipIf(skipReason !== undefined)('workload isolation inside a real VM (qemu driver)', () => {
  it('runs the workload as the image USER in its own PID namespace, hides the guest agent from it, and stops it with SIGTERM', { timeout: 600_000 }, async ({
    skip,
  }) => {
    platform = await NodePlatform.start();
    const p = platform;
    const build = await execa('bash', [join(repo, 'deploy/guest-image/build.sh'), '--agent', p.guestAgentBundle], { reject: false });
    if (build.exitCode === 3) skip(`guest image build: ${build.stderr.trim().split('\n').at(-1) ?? ''}`);
    expect(build.exitCode, build.stderr).toBe(0);
    const imageDir = build.stdout.trim().split('\n').at(-1) ?? '';
    const agent = await p.addAgent({
      key: 'vm',
      driver: 'qemu',
      env: { SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR: imageDir, SHELLWEGO_NODE_AGENT_BOOT_TIMEOUT: '300s' },
    });

    const app = 'isolated';
    const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
    await p.importImage(`${app}:1`, await isolationImageArchive(`${app}:1`));
    const set = await p.cli(['secret', 'set', 'CANARY', '--app', app], { input: canary });
    expect(set.exitCode, set.stderr).toBe(0);
    const from = p.events.events.length;
    const deploy = await p.cli([
      'app',
      'deploy',
      app,
      '--image',
      `${app}:1`,
      '--secret',
      'CANARY',
      '--health',
      `exec:${PROBE_PATH}`,
      '--memory',
      '256Mi',
      '--label',
      'role=vm',
    ]);
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    const running = await instanceReached(p.events, app, InstanceState.RUNNING, 400_000, from);
    const instanceId = running.instanceId;

    const output = await logsUntil(agent.client, instanceId, 'isolation-canary=', 60_000);
    console.log(
      `[vm-guest-isolation] what the workload saw:\n${output
        .split('\n')
        .filter((l) => l.startsWith('isolation-'))
        .join('\n')}`,
    );
    // USER app, resolved from the image's /etc/passwd inside the VM.
    expect(reported(output, 'ids')).toBe(`${APP_UID}:${APP_GID}`);
    // PID 1 is the namespace's init; the workload is its first child.
    expect(reported(output, 'self')).toBe('2');
    const procs = reported(output, 'procs')
      .split(',')
      .filter((entry) => entry !== '')
      .map((entry) => {
        const [pid = '', comm = ''] = entry.split(':');
        return { pid: Number(pid), comm };
      });
    // Only its own tree: the init (busybox), itself and the commands it ran to report. Outside
    // the namespace /proc would list the VM's kernel threads, its /init and the guest agent.
    expect(procs.map((proc) => proc.comm)).not.toContain('node');
    expect(procs.map((proc) => proc.comm)).not.toContain('kthreadd');
    expect(procs[0]).toEqual({ pid: 1, comm: 'busybox' });
    expect(procs.length).toBeLessThanOrEqual(6);
    expect(reported(output, 'ps')).not.toMatch(/node|guest-agent/);
    expect(reported(output, 'canary')).toBe(canaryLine(canary).split('=')[1]);
    // The exec probe passes only as the app user inside the workload's PID namespace.
    await instanceReached(p.events, app, InstanceState.HEALTHY, 120_000, from);

    await expectNoProcessLeak(p, canary);

    const recorded = (await readStateFile(agent.stateDir)).instances.find((i) => i.instanceId === instanceId);
    const workDir = recorded?.vm.workDir ?? '';
    const rm = await p.cli(['app', 'rm', app]);
    expect(rm.exitCode, rm.stderr).toBe(0);
    await p.events.waitFor(
      (e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPED,
      60_000,
      `${instanceId} STOPPED`,
    );
    // The guest agent's log is on the VM's serial console, kept with its work dir.
    const kept = (await readdir(agent.keptWorkDirs)).filter((name) => name.startsWith(`${basename(workDir)}-`));
    expect(kept).toHaveLength(1);
    const console_ = await readFile(join(agent.keptWorkDirs, kept[0] ?? '', 'console.log'), 'utf8');
    const exited = console_
      .split('\n')
      .flatMap((line) => {
        const start = line.indexOf('{');
        try {
          return start < 0 ? [] : [JSON.parse(line.slice(start)) as Record<string, unknown>];
        } catch {
          return [];
        }
      })
      .filter((entry) => entry.msg === 'workload exited');
    console.log(`[vm-guest-isolation] the guest agent's record of the stop: ${JSON.stringify(exited)}`);
    // SIGTERM reached the workload's trap through the namespace, and its exit code came back out.
    expect(exited).toEqual([expect.objectContaining({ exitCode: TERM_EXIT_CODE })]);
  });
});
