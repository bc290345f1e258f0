// The memory of the platform's processes, found as the launcher's process tree (never by
// process name: this host may run other Postgres servers and node processes), one row per part:
// the launcher itself, each service with whatever runs below it, and the embedded Postgres with
// all its processes. RSS counts every page a process maps, so the node binary's shared text is
// counted once per process; PSS divides each shared page among the processes mapping it, so the
// sum of PSS is what the processes really occupy together.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { deployables } from '@shellwego/build';
import { descendantsOf, readCmdline } from '@shellwego/kit/process';
import { statOf } from './proc-stat.js';

export interface PartMemory {
  /** "launcher", a service's name, "postgres", or "other: <command>". */
  readonly name: string;
  readonly pids: readonly number[];
  readonly rssMiB: number;
  readonly pssMiB: number;
}

const SERVICES = ['scheduler', 'secrets', 'registry', 'node-agent'] as const;

/** Rss and Pss of one process from /proc/<pid>/smaps_rollup, in MiB; undefined once it is gone. */
export async function processMemory(pid: number): Promise<{ rssMiB: number; pssMiB: number } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return undefined;
  }
  // /proc's "kB" are KiB.
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) / 1024;
  return { rssMiB: field('Rss'), pssMiB: field('Pss') };
}

/** What a child of the launcher is, from its command line. */
function partName(pid: number): string {
  const argv = readCmdline(pid) ?? [];
  const service = SERVICES.find((name) => argv.includes(deployables[name].outfile));
  if (service !== undefined) return service;
  if (basename(argv[0] ?? '') === 'postgres') return 'postgres';
  return `other: ${argv
    .slice(0, 3)
    .map((arg) => basename(arg))
    .join(' ')}`;
}

/** Each part of the platform below (and including) the launcher, its processes summed. */
export async function platformMemory(launcherPid: number): Promise<PartMemory[]> {
  const parts = [
    { name: 'launcher', pids: [launcherPid] },
    // Each child of the launcher, with everything below it.
    ...descendantsOf(launcherPid)
      .filter((pid) => statOf(pid)?.ppid === launcherPid)
      .map((pid) => ({ name: partName(pid), pids: [pid, ...descendantsOf(pid)] })),
  ];
  return Promise.all(
    parts.map(async (part) => {
      // A process that ended in between occupies nothing any more.
      const readings = (await Promise.all(part.pids.map(processMemory))).filter((m) => m !== undefined);
      return {
        ...part,
        rssMiB: readings.reduce((sum, m) => sum + m.rssMiB, 0),
        pssMiB: readings.reduce((sum, m) => sum + m.pssMiB, 0),
      };
    }),
  );
}
