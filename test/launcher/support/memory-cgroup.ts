// A memory cgroup of its own for a platform run, as an operator's systemd slice would hold it:
// created below the cgroup this process runs in (so whatever manages that one still sees it),
// optionally with a hard limit, read for what it is charged, its peak and its OOM kills, and
// removed afterwards. cgroup v1 (the memory hierarchy) and v2 (the unified one, where the memory
// controller must be delegated to our cgroup).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CgroupMemory {
  /** Anonymous memory plus mapped files and shared memory: v1 rss + mapped_file, v2 anon + file_mapped. */
  readonly chargedMiB: number;
  /** Everything charged, page cache included: v1 usage_in_bytes, v2 memory.current. */
  readonly usageMiB: number;
  /** usage less the inactive file cache the kernel would reclaim first (what cAdvisor calls the working set). */
  readonly workingSetMiB: number;
  /** The highest usage so far (v1 max_usage_in_bytes, v2 memory.peak); undefined where the kernel has none. */
  readonly peakMiB: number | undefined;
  /** Processes the OOM killer killed in the group. */
  readonly oomKills: number;
  /** Times the usage hit the limit (v1 failcnt, v2 memory.events max). */
  readonly limitHits: number;
}

interface Hierarchy {
  readonly version: 1 | 2;
  /** The directory of the cgroup this process is in. */
  readonly own: string;
}

const MiB = 1024 * 1024;

/** The memory hierarchy this process is in: v1's memory controller first, else v2 with memory. */
function findHierarchy(): Hierarchy | string {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const memberships = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  for (const line of mounts) {
    const [before, after] = line.split(' - ');
    const [fstype, , options] = after?.split(' ') ?? [];
    const fields = before?.split(' ') ?? [];
    const root = fields[3] ?? '/';
    const mountPoint = fields[4] ?? '';
    const inside = (path: string) => join(mountPoint, root === '/' ? path : path.slice(root.length));
    if (fstype === 'cgroup' && options?.split(',').includes('memory')) {
      const path = memberships.map((m) => m.split(':')).find(([, controllers]) => controllers?.split(',').includes('memory'))?.[2];
      if (path !== undefined) return { version: 1, own: inside(path) };
    }
    if (fstype === 'cgroup2' && existsSync(join(mountPoint, 'cgroup.controllers'))) {
      const path = memberships.find((m) => m.startsWith('0::'))?.slice(3);
      if (path !== undefined && readFileSync(join(mountPoint, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) {
        return { version: 2, own: inside(path) };
      }
    }
  }
  return 'this host has no memory cgroup controller (neither a cgroup v1 memory hierarchy nor cgroup v2 with the memory controller is mounted)';
}

function readNumber(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

/** "key value" lines (memory.stat, memory.events, memory.oom_control) as a map. */
function readKeyed(file: string): Map<string, number> {
  return new Map(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [key, value] = line.split(' ');
        return [key ?? '', Number(value)];
      }),
  );
}

export class MemoryCgroup {
  private constructor(
    readonly dir: string,
    readonly version: 1 | 2,
  ) {}

  /**
   * A new cgroup named `<prefix>-<random>` below our own, with `limitBytes` as its hard limit
   * (swap included) when given. Throws, saying why, when none can be made here.
   */
  static create(prefix: string, limitBytes?: number): MemoryCgroup {
    const hierarchy = findHierarchy();
    if (typeof hierarchy === 'string') throw new Error(hierarchy);
    const dir = join(hierarchy.own, `${prefix}-${randomBytes(4).toString('hex')}`);
    try {
      if (hierarchy.version === 2) delegateMemory(hierarchy.own);
      mkdirSync(dir);
    } catch (error) {
      throw new Error(`cannot create a memory cgroup in ${hierarchy.own}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const group = new MemoryCgroup(dir, hierarchy.version);
    try {
      if (limitBytes !== undefined) group.limit(limitBytes);
    } catch (error) {
      rmdirSync(dir);
      throw new Error(`cannot set the limit of the memory cgroup ${dir}: ${error instanceof Error ? error.message : String(error)}`);
    }
    return group;
  }

  /** Why no memory cgroup can be created here, or undefined when one can (made and removed to find out). */
  static unavailable(): string | undefined {
    try {
      const probe = MemoryCgroup.create('shellwego-probe', 1024 * MiB);
      rmdirSync(probe.dir);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  /** Write a pid here to move that process (and the children it starts afterwards) into the group. */
  get procsFile(): string {
    return join(this.dir, 'cgroup.procs');
  }

  pids(): number[] {
    return readFileSync(this.procsFile, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  }

  memory(): CgroupMemory {
    const file = (name: string) => join(this.dir, name);
    if (this.version === 1) {
      const stat = readKeyed(file('memory.stat'));
      const usage = readNumber(file('memory.usage_in_bytes'));
      return {
        chargedMiB: ((stat.get('total_rss') ?? 0) + (stat.get('total_mapped_file') ?? 0)) / MiB,
        usageMiB: usage / MiB,
        workingSetMiB: Math.max(0, usage - (stat.get('total_inactive_file') ?? 0)) / MiB,
        peakMiB: readNumber(file('memory.max_usage_in_bytes')) / MiB,
        oomKills: readKeyed(file('memory.oom_control')).get('oom_kill') ?? 0,
        limitHits: readNumber(file('memory.failcnt')),
      };
    }
    const stat = readKeyed(file('memory.stat'));
    const events = readKeyed(file('memory.events'));
    const usage = readNumber(file('memory.current'));
    return {
      chargedMiB: ((stat.get('anon') ?? 0) + (stat.get('file_mapped') ?? 0)) / MiB,
      usageMiB: usage / MiB,
      workingSetMiB: Math.max(0, usage - (stat.get('inactive_file') ?? 0)) / MiB,
      peakMiB: existsSync(file('memory.peak')) ? readNumber(file('memory.peak')) / MiB : undefined,
      oomKills: events.get('oom_kill') ?? 0,
      limitHits: events.get('max') ?? 0,
    };
  }

  /**
   * Ends whatever still runs in the group (every process in it descends from the one the caller
   * put there) and removes it; waits up to 10 s for the processes to leave.
   */
  async remove(): Promise<void> {
    if (!existsSync(this.dir)) return;
    const until = Date.now() + 10_000;
    for (;;) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Ended in between.
        }
      }
      try {
        rmdirSync(this.dir);
        return;
      } catch (error) {
        if (Date.now() > until) throw new Error(`cannot remove the memory cgroup ${this.dir}: ${error instanceof Error ? error.message : String(error)}`);
      }
      await sleep(100);
    }
  }

  private limit(bytes: number): void {
    const file = (name: string) => join(this.dir, name);
    if (this.version === 1) {
      writeFileSync(file('memory.limit_in_bytes'), String(bytes));
      // Memory plus swap: without it a host with swap would let the group grow past the limit.
      if (existsSync(file('memory.memsw.limit_in_bytes'))) writeFileSync(file('memory.memsw.limit_in_bytes'), String(bytes));
      return;
    }
    writeFileSync(file('memory.max'), String(bytes));
    if (existsSync(file('memory.swap.max'))) writeFileSync(file('memory.swap.max'), '0');
  }
}

/** cgroup v2: our cgroup must hand the memory controller to its children. */
function delegateMemory(own: string): void {
  const control = join(own, 'cgroup.subtree_control');
  if (readFileSync(control, 'utf8').split(/\s+/).includes('memory')) return;
  try {
    writeFileSync(control, '+memory');
  } catch (error) {
    throw new Error(
      `the memory controller is not delegated to ${own} and cannot be (${error instanceof Error ? error.message : String(error)}); run under a systemd unit with Delegate=yes or as root in a cgroup without processes of its own`,
    );
  }
}
