// One cgroup per VMM, so one VM cannot take the node's CPU or memory from the others: a CPU
// quota from the app's CPU request and a memory limit of the VM's memory plus the VMM's own
// overhead. cgroup v2 where the host has the cpu and memory controllers there, else the v1
// hierarchies (cpu, cpuacct, memory; co-mounted or not). Every VM's cgroup is a child of one
// parent cgroup (setting VM_CGROUP_PARENT), named after the VM, so an agent that restarts finds
// its VMs' cgroups by name and sweeps those no VM owns. The VMM enters its cgroup before its first
// instruction: it is started through /bin/sh, which writes its own pid into the cgroup and then
// execs the VMM (same pid), so no instant of it runs unconfined.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The CFS period: quotas are counted per 100 ms. */
export const CPU_PERIOD_US = 100_000;
// The kernel refuses quotas below 1 ms per period.
const MIN_QUOTA_US = 1_000;
const REMOVE_WAIT_MS = 5_000;
const REMOVE_POLL_MS = 20;

export interface CgroupLimits {
  /** Thousandths of a core: 250 is a quarter of one core. */
  readonly cpuMillis: number;
  readonly memoryBytes: number;
}

/** Where the VMs' cgroups go: the parent cgroup's directory in each hierarchy used. */
export type CgroupLayout =
  | { readonly version: 2; readonly parent: string; readonly mount: string }
  | { readonly version: 1; readonly cpu: string; readonly cpuacct: string; readonly memory: string };

export interface ProcFiles {
  readonly mountinfo: string;
  readonly cgroup: string;
}

const PROC_SELF: ProcFiles = { mountinfo: '/proc/self/mountinfo', cgroup: '/proc/self/cgroup' };

export type CgroupDetection = { readonly ok: true; readonly layout: CgroupLayout } | { readonly ok: false; readonly why: string };

interface CgroupMount {
  readonly root: string;
  readonly mountPoint: string;
  readonly version: 1 | 2;
  readonly controllers: readonly string[];
}

/**
 * Finds the hierarchies and the parent cgroup's place in each. `parent` is absolute ("/shellwego")
 * from a hierarchy's root, or relative ("shellwego") below the cgroup the agent itself runs in.
 */
export function detectCgroups(parent: string, proc: ProcFiles = PROC_SELF): CgroupDetection {
  let mounts: CgroupMount[];
  let own: Map<string, string>;
  try {
    mounts = parseMountinfo(readFileSync(proc.mountinfo, 'utf8'));
    own = parseProcCgroup(readFileSync(proc.cgroup, 'utf8'));
  } catch (error) {
    return { ok: false, why: `cannot read ${proc.mountinfo} or ${proc.cgroup}: ${(error as Error).message}` };
  }
  const place = (mount: CgroupMount, ownPath: string | undefined): string => {
    if (parent.startsWith('/')) return join(mount.mountPoint, parent);
    const path = ownPath ?? '/';
    const below = path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
    return join(mount.mountPoint, below, parent);
  };
  const v1 = (controller: string) => mounts.find((m) => m.version === 1 && m.controllers.includes(controller));
  const cpu = v1('cpu');
  const cpuacct = v1('cpuacct');
  const memory = v1('memory');
  if (cpu !== undefined && cpuacct !== undefined && memory !== undefined) {
    return {
      ok: true,
      layout: { version: 1, cpu: place(cpu, own.get('cpu')), cpuacct: place(cpuacct, own.get('cpuacct')), memory: place(memory, own.get('memory')) },
    };
  }
  const unified = mounts.find((m) => m.version === 2);
  if (unified !== undefined) {
    const available = readFileOr(join(unified.mountPoint, 'cgroup.controllers')).split(/\s+/);
    if (available.includes('cpu') && available.includes('memory')) {
      return { ok: true, layout: { version: 2, parent: place(unified, own.get('')), mount: unified.mountPoint } };
    }
  }
  return {
    ok: false,
    why: 'neither cgroup v2 with the cpu and memory controllers nor the v1 cpu, cpuacct and memory hierarchies are mounted',
  };
}

function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mountpoint options [optional fields] - fstype source superoptions
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fstype, , superOptions = ''] = right.split(' ');
    const root = unescapeMount(fields[3] ?? '/');
    const mountPoint = unescapeMount(fields[4] ?? '');
    if (fstype === 'cgroup2') mounts.push({ root, mountPoint, version: 2, controllers: [] });
    if (fstype === 'cgroup') mounts.push({ root, mountPoint, version: 1, controllers: superOptions.split(',') });
  }
  return mounts;
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** controller name ('' for v2) to the agent's own cgroup path. */
function parseProcCgroup(text: string): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    const [, controllers = '', path = '/'] = match;
    if (controllers === '') own.set('', path);
    for (const controller of controllers.split(',')) own.set(controller, path);
  }
  return own;
}

function readFileOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** The cgroups of a node's VMMs, below the one parent. */
export class VmmCgroups {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly layout: CgroupLayout) {}

  /** The parent directories, one per hierarchy used (co-mounted v1 controllers share one). */
  private get parents(): string[] {
    const layout = this.layout;
    return layout.version === 2 ? [layout.parent] : [...new Set([layout.cpu, layout.cpuacct, layout.memory])];
  }

  private cgroup(name: string): VmmCgroup {
    const layout = this.layout;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`${JSON.stringify(name)} cannot name a cgroup`);
    return layout.version === 2
      ? new VmmCgroup(name, { version: 2, dir: join(layout.parent, name) })
      : new VmmCgroup(name, { version: 1, cpu: join(layout.cpu, name), cpuacct: join(layout.cpuacct, name), memory: join(layout.memory, name) });
  }

  /**
   * Makes the parent cgroup and removes it again: proves the agent may create cgroups here (it
   * needs root, or a delegated subtree) before any VM depends on it.
   */
  check(): Promise<void> {
    return this.serial(async () => {
      if (this.layout.version === 2) await this.enableV2Controllers();
      for (const parent of this.parents) await mkdir(parent, { recursive: true });
      await this.removeEmptyParents();
    });
  }

  /** Makes the VM's cgroup with its limits (a leftover empty one of the same name is reused). */
  create(name: string, limits: CgroupLimits): Promise<VmmCgroup> {
    const cgroup = this.cgroup(name);
    return this.serial(async () => {
      if (this.layout.version === 2) await this.enableV2Controllers();
      for (const dir of cgroup.dirs) await mkdir(dir, { recursive: true });
      try {
        await cgroup.limit(limits);
      } catch (error) {
        await cgroup.remove().catch(() => undefined);
        throw error;
      }
      return cgroup;
    });
  }

  /** Kills what still runs in the VM's cgroup and removes it, and the parent once no VM is left. */
  release(cgroup: VmmCgroup): Promise<void> {
    return this.serial(async () => {
      await cgroup.killAll();
      await cgroup.remove();
      await this.removeEmptyParents();
    });
  }

  /** The cgroup of a VM booted by an earlier agent process, when it is still there. */
  find(name: string): VmmCgroup | undefined {
    const cgroup = this.cgroup(name);
    return cgroup.dirs.every((dir) => existsSync(dir)) ? cgroup : undefined;
  }

  /** Removes every cgroup below the parent whose name is not in keep, SIGKILLing what still runs in it. */
  sweep(keep: ReadonlySet<string>): Promise<{ name: string; killed: number[] }[]> {
    return this.serial(async () => {
      const names = new Set<string>();
      for (const parent of this.parents) {
        for (const entry of await readdir(parent, { withFileTypes: true }).catch(() => [])) {
          if (entry.isDirectory()) names.add(entry.name);
        }
      }
      const swept: { name: string; killed: number[] }[] = [];
      for (const name of names) {
        if (keep.has(name)) continue;
        const cgroup = this.cgroup(name);
        const killed = await cgroup.killAll();
        await cgroup.remove();
        swept.push({ name, killed });
      }
      await this.removeEmptyParents();
      return swept;
    });
  }

  /** One change at a time: a parent removed as empty must not vanish under a cgroup being made. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async removeEmptyParents(): Promise<void> {
    for (const parent of this.parents) {
      await rmdir(parent).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EBUSY' && error.code !== 'ENOTEMPTY' && error.code !== 'ENOENT') throw error;
      });
    }
  }

  /**
   * cgroup v2 gives a child a controller only when every ancestor enables it for its children
   * (cgroup.subtree_control), from the hierarchy's root down to the parent.
   */
  private async enableV2Controllers(): Promise<void> {
    const layout = this.layout;
    if (layout.version !== 2) return;
    const below = layout.parent
      .slice(layout.mount.length)
      .split('/')
      .filter((part) => part !== '');
    let dir = layout.mount;
    for (const part of ['', ...below]) {
      dir = join(dir, part);
      await mkdir(dir, { recursive: true });
      const enabled = readFileOr(join(dir, 'cgroup.subtree_control')).split(/\s+/);
      const missing = ['cpu', 'memory'].filter((controller) => !enabled.includes(controller));
      if (missing.length > 0) await writeFile(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
    }
  }
}

type CgroupDirs =
  | { readonly version: 2; readonly dir: string }
  | { readonly version: 1; readonly cpu: string; readonly cpuacct: string; readonly memory: string };

/** One VMM's cgroup. */
export class VmmCgroup {
  constructor(
    readonly name: string,
    private readonly at: CgroupDirs,
  ) {}

  /** Its directory in each hierarchy (one for v2). */
  get dirs(): string[] {
    const at = this.at;
    return at.version === 2 ? [at.dir] : [...new Set([at.cpu, at.cpuacct, at.memory])];
  }

  async limit(limits: CgroupLimits): Promise<void> {
    const quotaUs = Math.max(MIN_QUOTA_US, Math.round((limits.cpuMillis * CPU_PERIOD_US) / 1000));
    const memory = String(Math.ceil(limits.memoryBytes));
    const at = this.at;
    if (at.version === 2) {
      await writeFile(join(at.dir, 'cpu.max'), `${quotaUs} ${CPU_PERIOD_US}`);
      await writeFile(join(at.dir, 'memory.max'), memory);
      return;
    }
    await writeFile(join(at.cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    await writeFile(join(at.cpu, 'cpu.cfs_quota_us'), String(quotaUs));
    await writeFile(join(at.memory, 'memory.limit_in_bytes'), memory);
  }

  /**
   * The command that starts `command args` inside this cgroup: /bin/sh writes its own pid into
   * every hierarchy's cgroup.procs, then execs the command (same pid), or exits 125 if it cannot.
   * The shell would add PWD to the command's environment: it is unset, so the command gets exactly
   * the environment it was started with.
   */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] } {
    const procs = this.dirs.map((dir) => join(dir, 'cgroup.procs'));
    const script = 'unset PWD; n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; exec "$@"';
    return { command: '/bin/sh', args: ['-c', script, 'shellwego-enter-cgroup', String(procs.length), ...procs, command, ...args] };
  }

  /** CPU time used by everything that ran in the cgroup, in nanoseconds. */
  async cpuUsageNs(): Promise<number> {
    const at = this.at;
    if (at.version === 2) {
      const usec = /^usage_usec (\d+)$/m.exec(await readFile(join(at.dir, 'cpu.stat'), 'utf8'))?.[1];
      if (usec === undefined) throw new Error(`no usage_usec in ${join(at.dir, 'cpu.stat')}`);
      return Number(usec) * 1000;
    }
    return Number((await readFile(join(at.cpuacct, 'cpuacct.usage'), 'utf8')).trim());
  }

  /** SIGKILLs every process in the cgroup; returns their pids. */
  async killAll(): Promise<number[]> {
    const killed: number[] = [];
    for (const dir of this.dirs) {
      for (const line of (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n')) {
        const pid = Number(line);
        if (!Number.isInteger(pid) || pid <= 0 || killed.includes(pid)) continue;
        try {
          process.kill(pid, 'SIGKILL');
          killed.push(pid);
        } catch {
          // Already gone.
        }
      }
    }
    return killed;
  }

  /** Removes the cgroup once it is empty: a VMM just killed may take a moment to leave it. */
  async remove(): Promise<void> {
    const deadline = Date.now() + REMOVE_WAIT_MS;
    for (const dir of this.dirs) {
      for (;;) {
        try {
          await rmdir(dir);
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || Date.now() > deadline) throw new Error(`cannot remove cgroup ${dir}: ${(error as Error).message}`);
          await sleep(REMOVE_POLL_MS);
        }
      }
    }
  }
}
