// What a running process exposes to anyone allowed to read /proc/<pid>: its environment as it
// was at exec and its command line. A secret passed to a platform process through either would
// sit there for the process's lifetime; this searches both for the processes given and every
// process below them (children found through the parent pid in /proc/<pid>/stat).
import { readFile } from 'node:fs/promises';
import { errnoCode } from '@shellwego/kit/errors';
import { descendantsOf, isRunning } from '@shellwego/kit/process';
import { leaks, type Secrets } from './leak-scan.js';

export interface ProcessScan {
  /** Every pid whose environ and cmdline were read. */
  readonly scanned: number[];
  /** As "pid N environ (argv0)". */
  readonly leaking: string[];
  /** A given process that does not run, or a file that could not be read: the sweep fails on them. */
  readonly unreadable: string[];
}

/**
 * The roots and their descendants, except the excluded pids and everything below them. The
 * descendants of the roots are listed before those of the excluded pids: a child born in between
 * is then excluded without ever having been listed, never listed without being excluded.
 */
export async function scanProcesses(roots: readonly number[], secrets: Secrets, exclude: readonly number[] = []): Promise<ProcessScan> {
  const listed = new Set(roots.flatMap((pid) => [pid, ...descendantsOf(pid)]));
  const excluded = new Set(exclude.flatMap((pid) => [pid, ...descendantsOf(pid)]));
  const scan = { scanned: [] as number[], leaking: [] as string[], unreadable: [] as string[] };
  for (const pid of roots) {
    if (!isRunning(pid)) scan.unreadable.push(`pid ${pid} (not running)`);
  }
  for (const pid of listed) {
    if (excluded.has(pid)) continue;
    const read = await Promise.all(['environ', 'cmdline'].map((file) => readProc(pid, file)));
    // A descendant that ended after it was listed holds nothing any more.
    if (read.some((r) => r.gone) && !roots.includes(pid)) continue;
    const argv0 = read[1]?.bytes?.toString('utf8').split('\0')[0] ?? '?';
    for (const [index, file] of ['environ', 'cmdline'].entries()) {
      const result = read[index];
      if (result?.bytes === undefined) scan.unreadable.push(`pid ${pid} ${file} (${result?.error ?? 'unknown'})`);
      else if (leaks(result.bytes, secrets)) scan.leaking.push(`pid ${pid} ${file} (${argv0})`);
    }
    scan.scanned.push(pid);
  }
  return scan;
}

async function readProc(pid: number, file: string): Promise<{ bytes?: Buffer; error?: string; gone: boolean }> {
  try {
    return { bytes: await readFile(`/proc/${pid}/${file}`), gone: false };
  } catch (error) {
    const code = errnoCode(error) ?? String(error);
    return { error: code, gone: code === 'ENOENT' || code === 'ESRCH' };
  }
}
