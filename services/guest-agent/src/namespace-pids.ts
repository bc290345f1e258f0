// VM mode: finds, by host pid, the namespace's init and the workload below busybox unshare.
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface NamespacePids {
  /** PID 1 of the workload's namespace. */
  readonly init: number;
  /** The workload (PID 2 there): the init's first child. */
  readonly workload: number;
}

const POLL_MS = 20;

/**
 * The init (unshare's child) and the workload (the init's oldest child), waiting up to timeoutMs
 * for them to be forked; undefined when they do not appear (the workload ended, or never started).
 */
export async function namespacePids(unsharePid: number, timeoutMs: number): Promise<NamespacePids | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const init = await oldestChild(unsharePid);
    const workload = init === undefined ? undefined : await oldestChild(init);
    if (init !== undefined && workload !== undefined) {
      return { init, workload };
    }
    if (Date.now() >= deadline) {
      return undefined;
    }
    await sleep(POLL_MS);
  }
}

/** The child of parent that started first (orphans the init adopts come later), by host pid. */
export async function oldestChild(parent: number): Promise<number | undefined> {
  let oldest: { pid: number; start: bigint } | undefined;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so fields count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) !== parent) {
      continue;
    }
    const start = BigInt(fields[19] ?? '0');
    const pid = Number(entry);
    if (oldest === undefined || start < oldest.start || (start === oldest.start && pid < oldest.pid)) {
      oldest = { pid, start };
    }
  }
  return oldest?.pid;
}
