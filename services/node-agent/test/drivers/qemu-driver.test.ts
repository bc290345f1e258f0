// The qemu driver booting a REAL VM: the guest image (deploy/guest-image/build.sh) with the real
// bundled guest agent, an ext4 app rootfs made here from static busybox + a script, KVM when it
// works and TCG otherwise (auto). GuestService over the virtio-serial channel: Health, Run with a
// secret, Wait for its output; adopt by a fresh driver; stop; nothing of the VM may remain.
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { isRunning } from '@shellwego/kit/process';
import { buildGuestAgent } from '@shellwego/testing/guest-agent';
import { capturingLogger } from '@shellwego/testing/logger';
import { guestImageBuildScript } from '@shellwego/testing/repo';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { QemuDriver } from '../../src/drivers/qemu/qemu-driver.js';
import { type GuestImage, VmDriverError, type VmHandle } from '../../src/drivers/types.js';
import { vmRecordOf } from '../../src/drivers/vm-record.js';
import { filesContaining, openGuest, runToExit } from './guest-session.js';

const buildScript = guestImageBuildScript;
const BUSYBOX = '/bin/busybox';

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function missing(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `a Linux x86-64 host (this is ${process.platform}/${process.arch})`;
  const lacking = [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['mkfs.ext4', 'e2fsprogs'],
    ['bash', 'bash'],
  ]
    .filter(([cmd]) => !onPath(cmd ?? ''))
    .map(([cmd, pkg]) => `${cmd} (Debian package ${pkg})`);
  if (!existsSync(BUSYBOX)) lacking.push(`${BUSYBOX} (Debian package busybox-static)`);
  return lacking.length > 0 ? `missing host capability: ${lacking.join('; ')}; deploy/setup-host.sh installs them` : undefined;
}

const skipReason = missing();
if (skipReason !== undefined) {
  console.warn(`[qemu-driver] SKIPPING the real VM boot: ${skipReason}`);
}

let dir: string | undefined;
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** An ext4 app image: static busybox, the applets the script needs, and the script. */
async function makeRootfs(root: string): Promise<string> {
  const src = join(root, 'rootfs-src');
  await mkdir(join(src, 'bin'), { recursive: true });
  await mkdir(join(src, 'app'));
  await copyFile(BUSYBOX, join(src, 'bin/busybox'));
  for (const applet of ['sh', 'sha256sum', 'cut', 'printf', 'echo']) {
    await symlink('busybox', join(src, 'bin', applet));
  }
  await writeFile(join(src, 'app/hash-canary.sh'), '#!/bin/sh\nprintf %s "$CANARY" | sha256sum | cut -d" " -f1\n');
  await chmod(join(src, 'app/hash-canary.sh'), 0o755);
  const image = join(root, 'app.ext4');
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'app', '-d', src, image, '16M']);
  return image;
}

describe.skipIf(skipReason !== undefined)(`qemu driver, real VM${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('boots the guest image, runs a workload with a secret over virtio-serial, adopts, stops and leaves nothing behind', { timeout: 240_000 }, async ({
    skip,
  }) => {
    dir = await mkdtemp(join(tmpdir(), 'drv-qemu-'));
    const bundle = (await buildGuestAgent()).outfile;
    const build = await execa('bash', [buildScript, '--agent', bundle], { reject: false });
    if (build.exitCode === 3) skip(`guest image build: ${build.stderr.trim().split('\n').at(-1) ?? ''}`);
    expect(build.exitCode, build.stderr).toBe(0);
    const imageDir = build.stdout.trim().split('\n').at(-1) ?? '';
    const guestImage: GuestImage = {
      vmlinuxPath: join(imageDir, 'vmlinux'),
      vmlinuzPath: join(imageDir, 'vmlinuz'),
      initramfsPath: join(imageDir, 'initramfs.cpio.gz'),
    };
    const rootfsPath = await makeRootfs(dir);

    const { logger, lines } = capturingLogger();
    const driver = new QemuDriver({ log: logger, accel: 'auto' });
    const instanceId = `shop-1-${randomBytes(4).toString('hex')}`;
    const workDir = join(dir, 'vm');
    const t0 = performance.now();
    let vm: VmHandle | undefined = await driver.boot({ instanceId, vcpus: 1, memoryMib: 512, rootfsPath, guestImage, workDir });
    try {
      const bootReturnedMs = performance.now() - t0;
      expect(vm.channel).toEqual({ kind: 'qemu-serial', path: join(workDir, 'guest.sock') });
      expect(driver.accelerator).toBeDefined();
      if (driver.accelerator?.accel === 'tcg' && existsSync('/dev/kvm')) {
        // The fallback must have been decided by a real KVM attempt, and said so.
        expect(driver.accelerator.why).toMatch(/KVM unusable|\/dev\/kvm is not usable/);
        expect(lines.join('\n')).toMatch(/falling back to TCG/);
      }

      const guest = openGuest(vm.channel, 120_000);
      const health = await guest.client.health({});
      const readyMs = performance.now() - t0;
      expect(health).toMatchObject({ agentAlive: true, workloadRunning: false });

      const canary = randomBytes(16).toString('hex');
      const result = await runToExit(guest.client, ['/app/hash-canary.sh'], { CANARY: Buffer.from(canary) });
      expect(result).toMatchObject({ stdout: `${createHash('sha256').update(canary).digest('hex')}\n`, exitCode: 0 });
      const again = await runToExit(guest.client, ['/bin/echo', 'warm'], {});
      expect(again.stdout).toBe('warm\n');
      console.log(
        `[qemu-driver] ${vm.detail}: boot() returned after ${(bootReturnedMs / 1000).toFixed(1)} s (includes the KVM attempt when auto had to decide); ` +
          `boot() -> guest agent Health-ready ${((readyMs - bootReturnedMs) / 1000).toFixed(1)} s; ` +
          `start -> Health-ready ${(readyMs / 1000).toFixed(1)} s; first Run (mounts the rootfs): RPC ${result.runMs.toFixed(0)} ms, -> output ${result.firstOutputMs.toFixed(0)} ms; ` +
          `second Run: RPC ${again.runMs.toFixed(0)} ms, -> output ${again.firstOutputMs.toFixed(0)} ms`,
      );
      guest.transport.close();

      // Nothing of the secret on the host: not in the console log, not anywhere under the test dir.
      expect(await filesContaining(dir, Buffer.from(canary))).toEqual([]);

      // A fresh driver (agent restart) adopts the running VM from its record and stops it.
      const fresh = new QemuDriver({ log: logger });
      const adopted = await fresh.adopt(JSON.parse(JSON.stringify(vmRecordOf(vm))));
      expect(adopted.kind).toBe('adopted');
      if (adopted.kind !== 'adopted') return;
      expect(adopted.handle.detail).toMatch(/^qemu (kvm|tcg) \(adopted\)$/);
      const reopened = openGuest(adopted.handle.channel, 10_000);
      expect((await reopened.client.health({})).agentAlive).toBe(true);
      reopened.transport.close();
      const stopStarted = performance.now();
      await fresh.stop(adopted.handle, { graceMs: 5_000 });
      const stopMs = performance.now() - stopStarted;
      await vm.exited;
      expect(isRunning(vm.pid)).toBe(false);
      expect(existsSync(workDir)).toBe(false);
      expect(await readdir(dir)).toEqual(expect.not.arrayContaining(['vm']));
      console.log(`[qemu-driver] stop (QMP quit) took ${stopMs.toFixed(0)} ms`);
      vm = undefined;
    } finally {
      if (vm !== undefined) await driver.stop(vm, { graceMs: 1_000 });
    }
  });

  it("fails a kernel QEMU cannot load with QEMU's own words, removes the work dir, and keeps KVM undecided", async () => {
    const bad = await mkdtemp(join(tmpdir(), 'drv-qemu-bad-'));
    try {
      for (const file of ['kernel', 'initrd', 'rootfs']) await writeFile(join(bad, file), 'not what it claims to be\n');
      const driver = new QemuDriver({ log: capturingLogger().logger, accel: 'auto' });
      const workDir = join(bad, 'vm');
      const err = await driver
        .boot({
          instanceId: 'bad-kernel-1',
          vcpus: 1,
          memoryMib: 512,
          rootfsPath: join(bad, 'rootfs'),
          guestImage: { vmlinuxPath: join(bad, 'kernel'), vmlinuzPath: join(bad, 'kernel'), initramfsPath: join(bad, 'initrd') },
          workDir,
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VmDriverError);
      expect((err as VmDriverError).reason).toBe('boot-failed');
      expect((err as VmDriverError).message).toMatch(/qemu exited \(code 1[\s\S]*kernel/);
      expect(existsSync(workDir)).toBe(false);
      // A bad kernel says nothing about KVM: where /dev/kvm is usable the next boot still tries
      // it; where it is not (no device on this host), that alone decided, not the kernel.
      if (kvmDeviceUsable()) expect(driver.accelerator).toBeUndefined();
      else expect(driver.accelerator).toEqual({ accel: 'tcg', why: expect.stringMatching(/^\/dev\/kvm is not usable \(E[A-Z]+\)$/) });
      expect(await driver.list()).toEqual([]);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});

function kvmDeviceUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
