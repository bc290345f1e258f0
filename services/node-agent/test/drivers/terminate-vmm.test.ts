// terminateVmm with killTree (the process driver's stop): it returns only once every process it
// killed is gone. A SIGKILLed process runs on until the kernel has torn it down, which takes a
// while for one holding a lot of memory: here such a "workload" below a "VMM" that ends at once.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendantsOf, isRunning } from '@shellwego/kit/process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { vmmEnvironment } from '../../src/drivers/vmm-environment.js';
import { spawnVmm, terminateVmm } from '../../src/drivers/vmm-process.js';

// perl (Debian's perl-base is Essential): 256 MiB in ordinary pages, whose release after SIGKILL
// takes about 20 ms here; Node's large buffers sit in huge pages and go too fast to show anything.
const WORKLOAD = `perl -e '$x = "a" x (256 * 1024 * 1024); $| = 1; print "ready\\n"; sleep 600'`;
// sh: a VMM whose own end takes no time, so only waiting for the workload covers the workload's.
const VMM = `${WORKLOAD} & wait`;

let dir: string;
const pids: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drv-kill-'));
});

afterAll(async () => {
  for (const pid of pids) {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
});

it('returns only after every killed descendant is gone, not just the VMM', { timeout: 30_000 }, async () => {
  const vmm = await spawnVmm('/bin/sh', ['-c', VMM, 'vmm-kill-tree'], { logPath: join(dir, 'vmm.log'), env: vmmEnvironment() });
  pids.push(vmm.pid);
  let workload: number | undefined;
  for (let tries = 0; workload === undefined && tries < 200; tries += 1) {
    await sleep(50);
    // The workload prints once its memory is touched.
    if (readFileSync(join(dir, 'vmm.log'), 'utf8').includes('ready')) {
      workload = descendantsOf(vmm.pid)[0];
    }
  }
  expect(workload).toBeDefined();
  if (workload === undefined) return;
  pids.push(workload);

  await terminateVmm({ pid: vmm.pid, identityArgs: ['vmm-kill-tree'], polite: async () => undefined, graceMs: 10, exited: vmm.exited, killTree: true });
  expect(isRunning(vmm.pid)).toBe(false);
  expect(isRunning(workload)).toBe(false);
});
