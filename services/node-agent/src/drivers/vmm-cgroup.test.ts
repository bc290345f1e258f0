// The VMM cgroup mechanism against this host's real cgroups (v1 here: cpu, cpuacct and memory
// mounted apart), below a parent named for this test run so nothing collides with a node agent or
// another test, all removed afterwards; and the detection of other layouts from mountinfo texts.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRunning } from '@shellwego/kit/process';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { type CgroupLayout, detectCgroups, VmmCgroups } from './vmm-cgroup.js';

const parent = `shellwego-unit-${randomBytes(4).toString('hex')}`;
const detected = detectCgroups(parent);
const spawned: number[] = [];
const tmp = await mkdtemp(join(tmpdir(), 'vmm-cgroup-'));

afterAll(async () => {
  for (const pid of spawned) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  if (detected.ok) await new VmmCgroups(detected.layout).sweep(new Set());
  await rm(tmp, { recursive: true, force: true });
});

function layoutOf(): CgroupLayout {
  if (!detected.ok) throw new Error(`this host's cgroups: ${detected.why}`);
  return detected.layout;
}

/** The cgroup path pid is in, per v1 controller (or '' for v2). */
function cgroupsOf(pid: number): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers = '', path = ''] = line.split(':');
    for (const controller of controllers.split(',')) map.set(controller, path);
  }
  return map;
}

describe("this host's cgroups", () => {
  it('finds the v1 cpu, cpuacct and memory hierarchies and puts the parent below the own cgroup', () => {
    const layout = layoutOf();
    expect(layout.version).toBe(1);
    if (layout.version !== 1) return;
    const own = cgroupsOf(process.pid);
    expect(layout.cpu).toBe(join('/sys/fs/cgroup/cpu', own.get('cpu') ?? '', parent));
    expect(layout.cpuacct).toBe(join('/sys/fs/cgroup/cpuacct', own.get('cpuacct') ?? '', parent));
    expect(layout.memory).toBe(join('/sys/fs/cgroup/memory', own.get('memory') ?? '', parent));
  });

  it('limits CPU and memory from the first instruction, finds the cgroup again, and removes it and the parent', { timeout: 60_000 }, async () => {
    const layout = layoutOf();
    if (layout.version !== 1) throw new Error('expected v1 on this host');
    const cgroups = new VmmCgroups(layout);
    await cgroups.check();
    expect(existsSync(layout.cpu)).toBe(false);

    const cgroup = await cgroups.create('vm-a', { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 });
    expect(await readFile(join(layout.cpu, 'vm-a', 'cpu.cfs_quota_us'), 'utf8')).toBe('10000\n');
    expect(await readFile(join(layout.cpu, 'vm-a', 'cpu.cfs_period_us'), 'utf8')).toBe('100000\n');
    expect(await readFile(join(layout.memory, 'vm-a', 'memory.limit_in_bytes'), 'utf8')).toBe(`${64 * 1024 * 1024}\n`);

    // The wrapped command is already inside when it starts: it prints its own cgroups first thing.
    const wrapped = cgroup.wrap('/bin/sh', ['-c', 'cat /proc/self/cgroup; while :; do :; done']);
    const spinner = execa(wrapped.command, wrapped.args, { reject: false, buffer: false, stdout: 'pipe', env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
    const pid = spinner.pid ?? 0;
    spawned.push(pid);
    const firstWords = await new Promise<string>((resolve) => spinner.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    expect(firstWords).toContain(`:cpu:${join(cgroupsOf(process.pid).get('cpu') ?? '', parent, 'vm-a')}`);
    expect(firstWords).toContain(`:memory:${join(cgroupsOf(process.pid).get('memory') ?? '', parent, 'vm-a')}`);

    // A busy loop held to 100m: at most a tenth of a core (plus a scheduler tick of slack).
    const before = await cgroup.cpuUsageNs();
    await sleep(2_000);
    const used = ((await cgroup.cpuUsageNs()) - before) / 2e9;
    expect(used).toBeGreaterThan(0.03);
    expect(used).toBeLessThan(0.13);

    expect(cgroups.find('vm-a')?.dirs).toEqual(cgroup.dirs);
    expect(cgroups.find('vm-b')).toBeUndefined();
    await cgroups.release(cgroup);
    await spinner;
    expect(isRunning(pid)).toBe(false);
    for (const dir of [...cgroup.dirs, layout.cpu, layout.cpuacct, layout.memory]) expect(existsSync(dir), dir).toBe(false);
  });

  it('sweeps the cgroups no VM owns, killing what runs in them, and keeps the others', { timeout: 60_000 }, async () => {
    const layout = layoutOf();
    const cgroups = new VmmCgroups(layout);
    const kept = await cgroups.create('vm-kept', { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024 });
    const orphan = await cgroups.create('vm-orphan', { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024 });
    const wrapped = orphan.wrap('/bin/sleep', ['300']);
    const sleeper = execa(wrapped.command, wrapped.args, { reject: false, env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
    spawned.push(sleeper.pid ?? 0);
    await sleep(200);
    const swept = await cgroups.sweep(new Set(['vm-kept']));
    expect(swept).toEqual([{ name: 'vm-orphan', killed: [sleeper.pid] }]);
    expect((await sleeper).signal).toBe('SIGKILL');
    expect(orphan.dirs.some((dir) => existsSync(dir))).toBe(false);
    expect(kept.dirs.every((dir) => existsSync(dir))).toBe(true);
    await cgroups.release(kept);
    expect(kept.dirs.some((dir) => existsSync(dir))).toBe(false);
  });

  it('hands the command exactly the environment it was started with', { timeout: 30_000 }, async () => {
    const cgroups = new VmmCgroups(layoutOf());
    const cgroup = await cgroups.create('vm-env', { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024 });
    const wrapped = cgroup.wrap('/bin/cat', ['/proc/self/environ']);
    const result = await execa(wrapped.command, wrapped.args, { env: { PATH: '/usr/bin:/bin' }, extendEnv: false, cwd: tmp });
    expect(result.stdout).toBe('PATH=/usr/bin:/bin\0');
    await cgroups.release(cgroup);
  });

  it('does not run the command when it cannot enter the cgroup', { timeout: 30_000 }, async () => {
    const cgroups = new VmmCgroups(layoutOf());
    const cgroup = await cgroups.create('vm-gone', { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024 });
    await cgroups.release(cgroup);
    const marker = join(tmp, 'ran');
    const wrapped = cgroup.wrap('/bin/touch', [marker]);
    const result = await execa(wrapped.command, wrapped.args, { reject: false, env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
    expect(result.exitCode).toBe(125);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('detectCgroups on other layouts', () => {
  async function detect(mountinfo: string, cgroup: string, parentPath: string) {
    const files = { mountinfo: join(tmp, `mountinfo-${randomBytes(3).toString('hex')}`), cgroup: join(tmp, `cgroup-${randomBytes(3).toString('hex')}`) };
    await writeFile(files.mountinfo, mountinfo);
    await writeFile(files.cgroup, cgroup);
    return detectCgroups(parentPath, files);
  }

  it('uses co-mounted v1 cpu,cpuacct as one hierarchy', async () => {
    const found = await detect(
      [
        '31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:1 - cgroup cgroup rw,cpu,cpuacct',
        '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      ].join('\n'),
      '3:cpu,cpuacct:/system.slice/agent.service\n4:memory:/system.slice/agent.service\n0::/system.slice/agent.service\n',
      'vms',
    );
    expect(found).toEqual({
      ok: true,
      layout: {
        version: 1,
        cpu: '/sys/fs/cgroup/cpu,cpuacct/system.slice/agent.service/vms',
        cpuacct: '/sys/fs/cgroup/cpu,cpuacct/system.slice/agent.service/vms',
        memory: '/sys/fs/cgroup/memory/system.slice/agent.service/vms',
      },
    });
  });

  it('uses v2 when the controllers are there, with an absolute parent from its root', async () => {
    const root = await mkdtemp(join(tmp, 'v2-'));
    await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    const found = await detect(`40 30 0:37 / ${root} rw,relatime - cgroup2 cgroup2 rw\n`, '0::/system.slice/agent.service\n', '/shellwego');
    expect(found).toEqual({ ok: true, layout: { version: 2, parent: join(root, 'shellwego'), mount: root } });
  });

  it('says why when neither has the controllers', async () => {
    const root = await mkdtemp(join(tmp, 'v2-'));
    await writeFile(join(root, 'cgroup.controllers'), 'hugetlb\n');
    const found = await detect(`40 30 0:37 / ${root} rw,relatime - cgroup2 cgroup2 rw\n`, '0::/\n', 'vms');
    expect(found).toEqual({ ok: false, why: expect.stringContaining('neither cgroup v2 with the cpu and memory controllers') });
  });
});
