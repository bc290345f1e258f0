// The host side of a real VM's hygiene, against real processes: a node agent on the qemu driver
// (TCG) in a whole platform, apps deployed through the CLI, and the VMM inspected from /proc.
// - QEMU's environment is the minimal one: a canary planted in the node agent's environment
//   (beside its join token) does not reach it, and QEMU runs under its seccomp sandbox.
// - Each VMM runs in its own cgroup (v1 cpu, cpuacct, memory on this host) below a parent named
//   for this run: a busy-loop app deployed with --cpu 250m keeps its VMM within a quarter core,
//   measured from the cgroup's cpuacct usage over 10 s; the cgroup is found again by a restarted
//   agent, an orphan one is swept, and every one is gone once the app is removed.
// - The serial console on disk stays within its bound (CONSOLE_LOG_BYTES) while the guest writes
//   to its console without end: the workload, root in the VM, makes a /dev/console node and
//   writes numbered lines to it in a loop.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceReached, lineAppears } from './support/instance-watch.js';
import { NodePlatform, readStateFile } from './support/node-platform.js';
import { scriptImageArchive } from './support/script-image.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENV_CANARY = `ENVCANARY${randomBytes(12).toString('hex')}`;
const BUSY_LOOP = 'echo spinning; while :; do :; done';
const CONSOLE_BOUND = 256 * 1024;
const FLOOD_PAD = '.'.repeat(80);
const FLOOD = `/bin/busybox mknod /flood-console c 5 1 && exec 3>/flood-console && i=0 && while :; do i=$((i + 1)); echo "flood $i ${FLOOD_PAD}" >&3; done`;
/** The fewest bytes one flood line takes on the console ("flood N " + pad + CR LF). */
const FLOOD_LINE_BYTES = 'flood 1 '.length + FLOOD_PAD.length + 2;
const CGROUP_PARENT = `shellwego-e2e-${randomBytes(4).toString('hex')}`;
const CGROUP_V1 = ['cpu', 'cpuacct', 'memory'] as const;
/** QEMU's memory beyond the guest's that the cgroup allows (QEMU_MEMORY_OVERHEAD_MIB). */
const QEMU_OVERHEAD_MIB = 128 + 192;
/**
 * CFS enforces the quota over the whole cgroup, TCG's own threads (I/O, RCU, the code cache
 * flushes) included, but per 100 ms period: a period can overrun by about a scheduler tick and
 * the 10 s window need not start on a period boundary. 20 % covers that; a VMM without the quota
 * spins a whole core (about 4 times the bound).
 */
const CPU_SLACK = 0.2;

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
      SHELLWEGO_NODE_AGENT_VM_CGROUPS: 'required',
      SHELLWEGO_NODE_AGENT_VM_CGROUP_PARENT: CGROUP_PARENT,
      SHELLWEGO_NODE_AGENT_CONSOLE_LOG_BYTES: String(CONSOLE_BOUND),
    },
  });
}, 300_000);

afterAll(async () => {
  await platform?.stop();
  // Whatever a failed test left: the agent removes its cgroups with its VMs, this makes sure.
  for (const dir of Object.values(parentDirs())) {
    if (!existsSync(dir)) continue;
    for (const child of await readdir(dir, { withFileTypes: true })) if (child.isDirectory()) await rmdir(join(dir, child.name)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
});

/** The parent cgroup's directory in each v1 hierarchy: below the cgroup this test (and so the agent it started) runs in. */
function parentDirs(): Record<(typeof CGROUP_V1)[number], string> {
  const own = cgroupPaths(process.pid);
  return Object.fromEntries(CGROUP_V1.map((c) => [c, join('/sys/fs/cgroup', c, own.get(c) ?? '?', CGROUP_PARENT)])) as Record<
    (typeof CGROUP_V1)[number],
    string
  >;
}

/** controller -> cgroup path of pid, from /proc. */
function cgroupPaths(pid: number): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSyncSafe(`/proc/${pid}/cgroup`).split('\n')) {
    const [, controllers = '', path = ''] = line.split(':');
    for (const controller of controllers.split(',')) map.set(controller, path);
  }
  return map;
}

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

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * QEMU's resident memory in MiB, split into the guest's RAM (the one mapping of exactly its size)
 * and everything else (the VMM's overhead: code cache, heap, libraries, mapped kernel and initramfs).
 */
async function qemuResidentMib(pid: number, guestMib: number): Promise<{ guest: number; overhead: number }> {
  let guest = 0;
  let overhead = 0;
  let isGuest = false;
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range !== null) isGuest = Number.parseInt(range[2] ?? '0', 16) - Number.parseInt(range[1] ?? '0', 16) === guestMib * 2 ** 20;
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss !== null) {
      if (isGuest) guest += Number(rss[1]) / 1024;
      else overhead += Number(rss[1]) / 1024;
    }
  }
  return { guest: Math.round(guest), overhead: Math.round(overhead) };
}

async function childCgroups(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}

async function removeApp(app: string, instanceId: string): Promise<void> {
  const rm = await platform.cli(['app', 'rm', app]);
  expect(rm.exitCode, rm.stderr).toBe(0);
  await platform.events.waitFor(
    (e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPED,
    60_000,
    `${app} STOPPED`,
  );
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

    const { instanceId, pid } = await deployScript('busy', BUSY_LOOP, '250m');
    expect(await environOf(pid)).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    // Mode 2: a seccomp filter is installed (QEMU's -sandbox on).
    expect(await readFile(`/proc/${pid}/status`, 'utf8')).toMatch(/^Seccomp:\s+2$/m);
    expect(platform.agentProcess('vm').lines.some((line) => line.includes('qemu: VMs run with -sandbox on (seccomp)'))).toBe(true);
    await removeApp('busy', instanceId);
  });

  it('holds a busy-loop VMM deployed with --cpu 250m to a quarter core in its own cgroup, found again after an agent restart', {
    timeout: 600_000,
  }, async () => {
    const { instanceId, pid } = await deployScript('spin', BUSY_LOOP, '250m');
    const vmName =
      (await readStateFile(platform.agent('vm').stateDir)).instances
        .find((i) => i.instanceId === instanceId)
        ?.vm.workDir.split('/')
        .at(-1) ?? '';
    const parents = parentDirs();
    const dirs = Object.fromEntries(CGROUP_V1.map((c) => [c, join(parents[c], vmName)])) as Record<(typeof CGROUP_V1)[number], string>;
    // QEMU is in the VM's cgroup in every hierarchy, by the kernel's word.
    const own = cgroupPaths(process.pid);
    for (const c of CGROUP_V1) expect(cgroupPaths(pid).get(c), c).toBe(join(own.get(c) ?? '', CGROUP_PARENT, vmName));
    expect(await readFile(join(dirs.cpu, 'cpu.cfs_quota_us'), 'utf8')).toBe('25000\n');
    expect(await readFile(join(dirs.memory, 'memory.limit_in_bytes'), 'utf8')).toBe(`${(384 + QEMU_OVERHEAD_MIB) * 1024 * 1024}\n`);

    // The guest really spins (its workload runs), and its VMM gets no more than the quota.
    const usage = async () => Number((await readFile(join(dirs.cpuacct, 'cpuacct.usage'), 'utf8')).trim());
    const throttled = async () => Number(/^nr_throttled (\d+)$/m.exec(await readFile(join(dirs.cpu, 'cpu.stat'), 'utf8'))?.[1] ?? 'NaN');
    const n0 = await throttled();
    const u0 = await usage();
    const t0 = process.hrtime.bigint();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const cores = ((await usage()) - u0) / Number(process.hrtime.bigint() - t0);
    const throttledPeriods = (await throttled()) - n0;
    const memoryPeak = Number((await readFile(join(dirs.memory, 'memory.max_usage_in_bytes'), 'utf8')).trim());
    const resident = await qemuResidentMib(pid, 384);
    console.log(
      `[vm-host-hygiene] busy VMM at --cpu 250m: ${cores.toFixed(3)} cores over 10 s (bound ${(0.25 * (1 + CPU_SLACK)).toFixed(2)}), throttled in ${throttledPeriods} of ~100 periods; cgroup memory peak ${(memoryPeak / 2 ** 20).toFixed(0)} MiB of ${384 + QEMU_OVERHEAD_MIB} MiB; QEMU resident: guest RAM ${resident.guest} MiB, the rest ${resident.overhead} MiB; load ${loadavg()[0]?.toFixed(1)}`,
    );
    // The guest does spin (on a loaded host the VMM may get less than its quota, never more).
    expect(cores).toBeGreaterThan(0.05);
    expect(cores).toBeLessThanOrEqual(0.25 * (1 + CPU_SLACK));
    // The quota is what held it, not a busy host: the kernel throttled the cgroup in many periods.
    expect(throttledPeriods).toBeGreaterThan(10);
    expect(await readFile(join(dirs.memory, 'memory.oom_control'), 'utf8')).toMatch(/^oom_kill 0$/m);

    // A cgroup no VM owns (left by an agent that died mid-boot) is swept at the next start; the
    // VM's own is found again and still removed with the VM.
    for (const c of CGROUP_V1) await mkdir(join(parents[c], 'orphan-vm'));
    expect(await platform.platform.stopProcess('vm', 'SIGKILL')).toBe('SIGKILL');
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    const from = platform.agentProcess('vm').lines.length;
    const restarted = await platform.platform.restartProcess('vm');
    await lineAppears(restarted.lines, (line) => line.includes('re-adopted running instances'), from, 60_000, 'the agent re-adopts the VM');
    for (const c of CGROUP_V1) expect(await childCgroups(parents[c]), c).toEqual([vmName]);

    await removeApp('spin', instanceId);
    // No VM left: neither its cgroup nor the parent remains.
    for (const c of CGROUP_V1) expect(existsSync(dirs[c]), dirs[c]).toBe(false);
    for (const c of CGROUP_V1) expect(existsSync(parents[c]), parents[c]).toBe(false);
  });

  it('keeps the console log within its bound while the guest writes to its console without end', { timeout: 600_000 }, async () => {
    const { instanceId } = await deployScript('flood', FLOOD, '1000m');
    const workDir = (await readStateFile(platform.agent('vm').stateDir)).instances.find((i) => i.instanceId === instanceId)?.vm.workDir ?? '';
    const log = join(workDir, 'console.log');
    const onDisk = () => [log, `${log}.1`].reduce((sum, file) => sum + (existsSync(file) ? statSync(file).size : 0), 0);
    // Sampled every 100 ms until the guest has written four times the bound (its line counter,
    // in the newest line on disk, says how much it wrote).
    let most = 0;
    let written = 0;
    const deadline = Date.now() + 300_000;
    while (written < 4 * CONSOLE_BOUND && Date.now() < deadline) {
      most = Math.max(most, onDisk());
      const tail = readFileSyncSafe(log).slice(-4096);
      const counter = [...tail.matchAll(/flood (\d+) /g)].at(-1)?.[1];
      if (counter !== undefined) written = Number(counter) * FLOOD_LINE_BYTES;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    console.log(`[vm-host-hygiene] console flood: the guest wrote ${written} bytes, at most ${most} on disk (bound ${CONSOLE_BOUND})`);
    expect(written).toBeGreaterThanOrEqual(4 * CONSOLE_BOUND);
    expect(most).toBeLessThanOrEqual(CONSOLE_BOUND);
    expect(most).toBeGreaterThan(CONSOLE_BOUND / 2);
    await removeApp('flood', instanceId);
  });
});
