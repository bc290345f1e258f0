// Boot proof for the guest image (deploy/guest-image/build.sh): builds kernel + initramfs with
// a fixture agent, checks the content-hash cache, then boots it under QEMU (KVM when it works,
// TCG otherwise) with a virtio-serial channel and a read-only ext4 virtio-blk drive. The
// fixture reports over the channel, reads a file from the drive, and exits on command; /init
// must then power the VM off.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it, type TestContext } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const buildScript = join(repo, 'deploy/guest-image/build.sh');
const fixtureAgent = join(repo, 'test/guest-image/fixtures/fixture-guest-agent.mjs');
const TEST_TIMEOUT = 240_000;
const READY_TIMEOUT = 60_000;
const POWEROFF_TIMEOUT = 30_000;
// A working KVM prints the kernel banner within a second or two of SeaBIOS's "Booting from
// ROM"; a broken one (nested KVM that cannot run the stock kernel) aborts, or hangs before it.
const KVM_BIOS_MS = 10_000;
const KVM_KERNEL_MS = 5_000;

interface Manifest {
  hash: string;
  kernel: { package: string; version: string; release: string };
  files: Record<string, { size: number; sha256: string }>;
  initramfs: { uncompressedSize: number; modules: string[] };
  buildSeconds: number;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What the host lacks for this proof, computed before the suite is declared; undefined: nothing. */
async function missingHostCapabilities(): Promise<string | undefined> {
  const lacking: string[] = [];
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    lacking.push(`a Linux x86-64 host (this is ${process.platform}/${process.arch})`);
  } else {
    for (const [cmd, pkg] of [
      ['bash', 'bash'],
      ['qemu-system-x86_64', 'qemu-system-x86'],
      ['mkfs.ext4', 'e2fsprogs'],
    ] as const) {
      if (!onPath(cmd)) lacking.push(`${cmd} (Debian package ${pkg}; deploy/setup-host.sh installs it)`);
    }
    if (onPath('bash')) {
      const check = await execa('bash', [buildScript, '--check', '--agent', fixtureAgent], { reject: false, all: true });
      // Exit 3 is build.sh's "a host capability is missing"; anything else non-zero is a real
      // failure and is left to the build test to report.
      if (check.exitCode === 3) {
        lacking.push(
          ...String(check.all)
            .split('\n')
            .filter((l) => l.includes('missing: '))
            .map((l) => l.replace(/^.*missing: /, '')),
        );
      }
    }
  }
  return lacking.length > 0 ? `missing host capability: ${lacking.join('; ')}` : undefined;
}

const skipReason = await missingHostCapabilities();
if (skipReason !== undefined) {
  console.warn(`[guest-image] SKIPPING the guest image boot proof: ${skipReason}`);
}

async function build(agent: string, extraArgs: string[] = []) {
  const started = performance.now();
  const result = await execa('bash', [buildScript, '--agent', agent, ...extraArgs], { reject: false });
  const seconds = (performance.now() - started) / 1000;
  const lastLine = result.stdout.trim().split('\n').at(-1) ?? '';
  return { result, seconds, lastLine, cacheHit: /cache hit/.test(result.stderr) };
}

/** The image, built once per run (a cache hit when the cache is warm). */
let image: { dir: string; manifest: Manifest } | undefined;

async function ensureImage(skip: TestContext['skip']) {
  if (image) return image;
  const b = await build(fixtureAgent);
  if (b.result.exitCode === 3) skip(`guest image build: ${b.result.stderr.trim()}`);
  expect(b.result.exitCode, b.result.stderr).toBe(0);
  const manifest = JSON.parse(await readFile(join(b.lastLine, 'manifest.json'), 'utf8')) as Manifest;
  image = { dir: b.lastLine, manifest };
  return image;
}

type Accel = 'kvm' | 'tcg';
let brokenKvm: string | undefined;

function kvmUsable(): string | undefined {
  if (brokenKvm) return brokenKvm;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return undefined;
  } catch {
    return '/dev/kvm is missing or not accessible';
  }
}

interface Vm {
  proc: ChildProcess;
  accel: Accel;
  consoleLog: string;
  channelPath: string;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function startQemu(accel: Accel, kernel: string, initrd: string, disk: string, dir: string): Vm {
  const consoleLog = join(dir, `console-${accel}.log`);
  const channelPath = join(dir, `ch-${accel}.sock`);
  const args = [
    '-machine',
    'pc',
    '-accel',
    accel,
    '-m',
    '512',
    '-smp',
    '1',
    '-nodefaults',
    '-nographic',
    '-no-reboot',
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    'console=ttyS0 panic=-1 shellwego.channel=virtio-serial:shellwego.0',
    '-serial',
    `file:${consoleLog}`,
    '-monitor',
    'none',
    '-device',
    'virtio-serial-pci',
    '-chardev',
    `socket,id=ch0,path=${channelPath},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=ch0,name=shellwego.0',
    '-drive',
    `file=${disk},format=raw,if=none,id=d0,readonly=on`,
    '-device',
    'virtio-blk-pci,drive=d0',
    '-device',
    'virtio-rng-pci',
  ];
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    proc.on('exit', (code, signal) => res({ code, signal }));
    proc.on('error', () => res({ code: -1, signal: null }));
  });
  return { proc, accel, consoleLog, channelPath, startedAt: performance.now(), exited, stderr: () => stderr };
}

function consoleText(vm: Vm): string {
  return existsSync(vm.consoleLog) ? readFileSync(vm.consoleLog, 'latin1') : '';
}

async function stopVm(vm: Vm) {
  if (vm.proc.exitCode === null && vm.proc.signalCode === null) {
    vm.proc.kill('SIGKILL');
    await vm.exited;
  }
}

/** Boots with KVM when it works here, else TCG; returns once the kernel is running. */
async function bootVm(kernel: string, initrd: string, disk: string, dir: string): Promise<Vm> {
  const kvmProblem = kvmUsable();
  if (kvmProblem === undefined) {
    const vm = startQemu('kvm', kernel, initrd, disk, dir);
    let deadline = performance.now() + KVM_BIOS_MS;
    let biosDone = false;
    let exited = false;
    void vm.exited.then(() => (exited = true));
    while (!exited && performance.now() < deadline && !consoleText(vm).includes('Linux version')) {
      if (!biosDone && consoleText(vm).includes('Booting from ROM')) {
        biosDone = true;
        deadline = performance.now() + KVM_KERNEL_MS;
      }
      await sleep(100);
    }
    if (!exited && consoleText(vm).includes('Linux version')) return vm;
    const errors = vm
      .stderr()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.includes('warning:'))
      .join(' / ');
    brokenKvm = exited
      ? `KVM: qemu exited at once (${errors || 'no error message'})`
      : biosDone
        ? `KVM: no kernel output ${KVM_KERNEL_MS / 1000}s after the BIOS handed over (the kernel hangs under this host's KVM)`
        : `KVM: no BIOS output within ${KVM_BIOS_MS / 1000}s`;
    await stopVm(vm);
    console.log(`[guest-image] ${brokenKvm}; falling back to TCG`);
  } else {
    console.log(`[guest-image] ${kvmProblem}; using TCG`);
  }
  return startQemu('tcg', kernel, initrd, disk, dir);
}

async function connectChannel(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((res, rej) => {
        const s = connect(path);
        s.once('connect', () => res(s));
        s.once('error', rej);
      });
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** Collects newline-terminated lines from the channel; waitFor resolves on the first match. */
function lineReader(socket: Socket) {
  const lines: string[] = [];
  let pending = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    pending += d.toString('utf8');
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      lines.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  socket.on('error', () => {});
  return {
    lines,
    async waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<string> {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const hit = lines.find((l) => pattern.test(l));
        if (hit !== undefined) return hit;
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; channel said: ${JSON.stringify(lines)}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(Math.min(left, 500))]);
      }
    },
  };
}

async function makeExt4(dir: string, token: string): Promise<string> {
  const src = join(dir, 'ext4-src');
  await mkdir(src);
  await writeFile(join(src, 'probe.txt'), `${token}\n`);
  const img = join(dir, 'probe.ext4');
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'probe', '-d', src, img, '8M']);
  return img;
}

describe.skipIf(skipReason !== undefined)(`guest image${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('builds kernel + initramfs into a content-addressed cache', { timeout: TEST_TIMEOUT }, async ({ skip }) => {
    const first = await build(fixtureAgent);
    if (first.result.exitCode === 3) skip(`guest image build: ${first.result.stderr.trim()}`);
    expect(first.result.exitCode, first.result.stderr).toBe(0);
    const dir = first.lastLine;
    console.log(`[guest-image] first build: ${first.cacheHit ? 'cache hit' : 'cold build'} in ${first.seconds.toFixed(1)}s -> ${dir}`);

    const second = await build(fixtureAgent);
    expect(second.result.exitCode, second.result.stderr).toBe(0);
    expect(second.cacheHit, second.result.stderr).toBe(true);
    expect(second.lastLine).toBe(dir);
    console.log(`[guest-image] second build (cache hit) in ${second.seconds.toFixed(1)}s`);

    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    expect(dir.endsWith(`/${manifest.hash}`)).toBe(true);
    for (const f of ['vmlinuz', 'vmlinux', 'initramfs.cpio.gz']) {
      expect(manifest.files[f]?.size, f).toBeGreaterThan(0);
    }
    const vmlinux = await readFile(join(dir, 'vmlinux'));
    expect(vmlinux.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(readFileSync(join(dir, 'vmlinuz')).subarray(0x202, 0x206).toString('latin1')).toBe('HdrS'); // bzImage
    for (const m of ['virtio_pci.ko', 'virtio_console.ko', 'virtio_blk.ko', 'ext4.ko', 'jbd2.ko', 'overlay.ko', 'vmw_vsock_virtio_transport.ko']) {
      expect(
        manifest.initramfs.modules.some((p) => p.endsWith(`/${m}`)),
        m,
      ).toBe(true);
    }
    const initramfsMiB = manifest.files['initramfs.cpio.gz']!.size / 2 ** 20;
    console.log(
      `[guest-image] kernel ${manifest.kernel.package} ${manifest.kernel.version}; initramfs ${initramfsMiB.toFixed(1)} MiB gzip ` +
        `(${(manifest.initramfs.uncompressedSize / 2 ** 20).toFixed(0)} MiB unpacked); build took ${manifest.buildSeconds}s when it was cold`,
    );
    expect(initramfsMiB).toBeLessThan(80);

    // The hash follows the agent bundle's content, not its path.
    const tmp = await mkdtemp(join(tmpdir(), 'shellwego-guest-image-'));
    try {
      const same = join(tmp, 'same.mjs');
      const changed = join(tmp, 'changed.mjs');
      await copyFile(fixtureAgent, same);
      await writeFile(changed, `${await readFile(fixtureAgent, 'utf8')}\n// changed ${randomBytes(4).toString('hex')}\n`);
      const hashSame = await build(same, ['--print-hash']);
      const hashChanged = await build(changed, ['--print-hash']);
      expect(hashSame.lastLine).toBe(manifest.hash);
      expect(hashChanged.lastLine).toMatch(/^[0-9a-f]{32}$/);
      expect(hashChanged.lastLine).not.toBe(manifest.hash);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    image = { dir, manifest };
  });

  for (const kernelFile of ['vmlinux', 'vmlinuz'] as const) {
    it(`boots the ${kernelFile} kernel under QEMU: agent ready on virtio-serial, ext4 over virtio-blk, power-off when the agent exits`, {
      timeout: TEST_TIMEOUT,
    }, async ({ skip }) => {
      const { dir, manifest } = await ensureImage(skip);
      const tmp = await mkdtemp(join(tmpdir(), 'shellwego-boot-'));
      let vm: Vm | undefined;
      let socket: Socket | undefined;
      try {
        const token = `probe-${randomBytes(8).toString('hex')}`;
        const disk = await makeExt4(tmp, token);
        vm = await bootVm(join(dir, kernelFile), join(dir, 'initramfs.cpio.gz'), disk, tmp);
        socket = await connectChannel(vm.channelPath, 10_000);
        const channel = lineReader(socket);

        const exitedEarly = vm.exited.then(({ code, signal }) => {
          throw new Error(`qemu exited early (code ${code}, signal ${signal}): ${vm!.stderr()}\nconsole:\n${consoleText(vm!).slice(-3000)}`);
        });
        exitedEarly.catch(() => {}); // only the race below cares; a later, normal exit is no error
        const ready = await Promise.race([channel.waitFor(/^guest-agent-fixture ready /, READY_TIMEOUT, 'the fixture ready line'), exitedEarly]).catch(
          (err: Error) => {
            throw new Error(`${err.message}\nconsole tail:\n${consoleText(vm!).slice(-3000)}`);
          },
        );
        const readySeconds = (performance.now() - vm.startedAt) / 1000;
        expect(ready).toBe(`guest-agent-fixture ready ${manifest.kernel.release}`);

        const modules = await channel.waitFor(/^guest-agent-fixture modules /, 10_000, 'the module list');
        for (const m of ['virtio_pci', 'virtio_console', 'virtio_blk', 'ext4', 'jbd2', 'vmw_vsock_virtio_transport']) {
          expect(modules.split(' ')[2]!.split(','), m).toContain(m);
        }
        const file = await channel.waitFor(/^guest-agent-fixture (file|error) /, 30_000, 'the ext4 probe result');
        expect(file).toBe(`guest-agent-fixture file ${token}`);

        socket.write('exit 3\n');
        await channel.waitFor(/^guest-agent-fixture exiting 3$/, 10_000, 'the fixture to acknowledge exit');
        const exitedAfter = performance.now();
        const exit = await Promise.race([
          vm.exited,
          sleep(POWEROFF_TIMEOUT).then(() => {
            throw new Error(`VM still running ${POWEROFF_TIMEOUT / 1000}s after the agent exited\nconsole tail:\n${consoleText(vm!).slice(-2000)}`);
          }),
        ]);
        expect(exit).toEqual({ code: 0, signal: null });
        const console_ = consoleText(vm);
        expect(console_).toContain('shellwego-init: guest agent exited with status 3');
        expect(console_).toMatch(/reboot: Power down/);
        console.log(
          `[guest-image] ${kernelFile} under ${vm.accel.toUpperCase()}: qemu start -> fixture ready ${readySeconds.toFixed(1)}s; ` +
            `agent exit -> VM gone ${((performance.now() - exitedAfter) / 1000).toFixed(1)}s`,
        );
      } finally {
        socket?.destroy();
        if (vm) await stopVm(vm);
        await rm(tmp, { recursive: true, force: true });
      }
    });
  }
});
