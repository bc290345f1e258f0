// The host side of a real VM's hygiene, against real processes: a node agent on the qemu driver
// (TCG) in a whole platform, apps deployed through the CLI, and the VMM inspected from /proc.
// - QEMU's environment is the minimal one: a canary planted in the node agent's environment
//   (beside its join token) does not reach it, and QEMU runs under its seccomp sandbox.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceReached } from './support/instance-watch.js';
import { NodePlatform, readStateFile } from './support/node-platform.js';
import { scriptImageArchive } from './support/script-image.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENV_CANARY = `ENVCANARY${randomBytes(12).toString('hex')}`;
const BUSY_LOOP = 'echo spinning; while :; do :; done';

let platform: NodePlatform;

beforeAll(async () => {
  platform = await NodePlatform.start();
  const build = await execa('bash', [join(repo, 'deploy/guest-image/build.sh'), '--agent', platform.guestAgentBundle], { reject: false });
  expect(build.exitCode, build.stderr).toBe(0);
  const imageDir = build.stdout.trim().split('\n').at(-1) ?? '';
  await platform.addAgent({
    key: 'vm',
    driver: 'qemu',
    env: {
      SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR: imageDir,
      SHELLWEGO_NODE_AGENT_BOOT_TIMEOUT: '300s',
      SHELLWEGO_TEST_ENV_CANARY: ENV_CANARY,
    },
  });
}, 300_000);

afterAll(async () => {
  await platform?.stop();
});

/** Deploys a script app on the qemu node and waits until its workload runs; returns the VMM's pid. */
async function deployScript(app: string, script: string, cpu: string): Promise<{ instanceId: string; pid: number }> {
  const tag = `${app}:1`;
  await platform.importImage(tag, await scriptImageArchive(tag, script));
  const from = platform.events.events.length;
  const deploy = await platform.cli(['app', 'deploy', app, '--image', tag, '--cpu', cpu, '--memory', '384Mi', '--label', 'role=vm']);
  expect(deploy.exitCode, deploy.stderr).toBe(0);
  const running = await instanceReached(platform.events, app, InstanceState.RUNNING, 400_000, from);
  const recorded = (await readStateFile(platform.agent('vm').stateDir)).instances.find((i) => i.instanceId === running.instanceId);
  if (recorded === undefined) throw new Error(`instance ${running.instanceId} is not in the node agent's state file`);
  return { instanceId: running.instanceId, pid: recorded.vm.pid };
}

async function environOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter((entry) => entry !== '');
}

describe('VM host hygiene (qemu driver, real VMs)', () => {
  it('runs QEMU with only a PATH in its environment and under its seccomp sandbox', { timeout: 600_000 }, async () => {
    const agentEnv = await environOf(platform.agentProcess('vm').process.child.pid ?? 0);
    // The canary and the join token really are in the node agent's environment.
    expect(agentEnv).toContain(`SHELLWEGO_TEST_ENV_CANARY=${ENV_CANARY}`);
    expect(agentEnv.some((entry) => entry.startsWith('SHELLWEGO_NODE_AGENT_JOIN_TOKEN='))).toBe(true);

    const { pid } = await deployScript('busy', BUSY_LOOP, '250m');
    expect(await environOf(pid)).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    // Mode 2: a seccomp filter is installed (QEMU's -sandbox on).
    expect(await readFile(`/proc/${pid}/status`, 'utf8')).toMatch(/^Seccomp:\s+2$/m);
    expect(platform.agentProcess('vm').lines.some((line) => line.includes('qemu: VMs run with -sandbox on (seccomp)'))).toBe(true);
  });
});
