// VM mode: the app's root filesystem, mounted read-only under a writable tmpfs overlay, with
// the API filesystems a process expects (/proc, /sys, a minimal /dev, /tmp) inside it.
import { execFile } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@shellwego/kit/log';
import { WorkloadError } from './workload-error.js';

const run = promisify(execFile);

/** Device nodes bound from the VM's /dev into the workload's own small /dev. */
const DEVICE_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

export class RootfsMounts {
  private device: string | undefined;
  /** Mount points in mount order, so they unmount in reverse. */
  private mounted: string[] = [];

  constructor(
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {}

  /** The workload root directory (the overlay). */
  get root(): string {
    return join(this.stateDir, 'root');
  }

  /** Mounts device (idempotent for the same device; another device replaces the old mounts). */
  async ensure(device: string): Promise<string> {
    if (this.device === device) {
      return this.root;
    }
    if (this.device !== undefined) {
      await this.release();
    }
    const lower = join(this.stateDir, 'lower');
    const rw = join(this.stateDir, 'rw');
    const root = this.root;
    await mkdir(lower, { recursive: true, mode: 0o700 });
    await mkdir(rw, { recursive: true, mode: 0o700 });
    await mkdir(root, { recursive: true, mode: 0o755 });
    try {
      await this.mount(['-t', 'ext4', '-o', 'ro', device, lower], `mount the app root filesystem ${device} read-only (ext4)`);
      await this.mount(['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', rw], 'mount the tmpfs for the overlay');
      await mkdir(join(rw, 'upper'), { mode: 0o755 });
      await mkdir(join(rw, 'work'), { mode: 0o700 });
      await this.mount(
        ['-t', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(rw, 'upper')},workdir=${join(rw, 'work')}`, 'overlay', root],
        'mount the overlay (is the overlay module loaded?)',
      );
      await this.mountApiFilesystems(root);
    } catch (err) {
      await this.release();
      throw err;
    }
    this.device = device;
    this.log.info({ device, root }, 'app root filesystem mounted read-only under a tmpfs overlay');
    return root;
  }

  /** Unmounts everything, newest first. */
  async release(): Promise<void> {
    for (const point of this.mounted.reverse()) {
      try {
        await run('umount', [point]);
      } catch {
        // Busy (a leftover process): detach it so the next mount starts clean.
        await run('umount', ['-l', point]).catch((err: unknown) => this.log.warn({ point, err: String(err) }, 'could not unmount'));
      }
    }
    this.mounted = [];
    this.device = undefined;
  }

  private async mountApiFilesystems(root: string): Promise<void> {
    for (const dir of ['proc', 'sys', 'dev', 'tmp']) {
      await mkdir(join(root, dir), { recursive: true });
    }
    await this.mount(['-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', join(root, 'proc')], 'mount /proc for the workload');
    await this.mount(['-t', 'tmpfs', '-o', 'mode=1777,nosuid,nodev', 'tmpfs', join(root, 'tmp')], 'mount /tmp for the workload');
    const dev = join(root, 'dev');
    await this.mount(['-t', 'tmpfs', '-o', 'mode=0755,nosuid,noexec', 'tmpfs', dev], 'mount /dev for the workload');
    for (const node of DEVICE_NODES) {
      await writeFile(join(dev, node), '', { mode: 0o666 });
      await this.mount(['-o', 'bind', `/dev/${node}`, join(dev, node)], `bind /dev/${node} for the workload`);
    }
    for (const [name, target] of [
      ['fd', '/proc/self/fd'],
      ['stdin', '/proc/self/fd/0'],
      ['stdout', '/proc/self/fd/1'],
      ['stderr', '/proc/self/fd/2'],
      ['ptmx', 'pts/ptmx'],
    ] as const) {
      await symlink(target, join(dev, name));
    }
    await mkdir(join(dev, 'pts'));
    await mkdir(join(dev, 'shm'), { mode: 0o1777 });
    // Optional: a workload without ptys or sysfs still runs.
    await this.mountOptional(['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620,nosuid,noexec', 'devpts', join(dev, 'pts')], 'devpts');
    await this.mountOptional(['-t', 'tmpfs', '-o', 'mode=1777,nosuid,nodev', 'tmpfs', join(dev, 'shm')], '/dev/shm');
    await this.mountOptional(['-t', 'sysfs', '-o', 'ro,nosuid,nodev,noexec', 'sysfs', join(root, 'sys')], 'sysfs');
  }

  private async mount(args: string[], what: string): Promise<void> {
    try {
      await run('mount', args);
    } catch (err) {
      const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr).trim() : String(err);
      throw new WorkloadError('failed-precondition', `cannot ${what}: ${stderr || 'mount failed'}`);
    }
    this.mounted.push(args[args.length - 1] ?? '');
  }

  private async mountOptional(args: string[], what: string): Promise<void> {
    try {
      await this.mount(args, `mount ${what}`);
    } catch (err) {
      this.log.warn({ what, reason: err instanceof Error ? err.message : String(err) }, 'optional mount for the workload failed');
    }
  }
}
