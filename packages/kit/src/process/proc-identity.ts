// What /proc says about a pid: is it still running (zombies do not count), is it still the VMM
// we started (its argv carries tokens naming the instance), and which processes descend from it.
import { readdirSync, readFileSync } from 'node:fs';

interface ProcStat {
  readonly state: string;
  readonly ppid: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const [state, ppid] = fields;
    return state === undefined || ppid === undefined ? undefined : { state, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** True while the process exists and has not exited (a zombie awaiting its parent has). */
export function isRunning(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

export function readCmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.endsWith('\0') ? raw.slice(0, -1).split('\0') : raw.split('\0');
  } catch {
    return undefined;
  }
}

export type Identity = { readonly kind: 'match' } | { readonly kind: 'gone' } | { readonly kind: 'other'; readonly cmdline: string };

/** Whether pid still runs with every expected argument (exact, whole-argument matches). */
export function checkIdentity(pid: number, expectedArgs: readonly string[]): Identity {
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    return { kind: 'gone' };
  }
  const args = readCmdline(pid);
  if (args === undefined || !isRunning(pid)) {
    return { kind: 'gone' };
  }
  return expectedArgs.every((arg) => args.includes(arg)) ? { kind: 'match' } : { kind: 'other', cmdline: args.join(' ').slice(0, 200) };
}

/** Every running process below pid, children before grandchildren. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    const stat = readStat(Number(entry));
    if (stat !== undefined) {
      const list = children.get(stat.ppid) ?? [];
      list.push(Number(entry));
      children.set(stat.ppid, list);
    }
  }
  const out: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of children.get(next) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}
