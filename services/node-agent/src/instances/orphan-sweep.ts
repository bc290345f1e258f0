// Work dirs no instance owns: left by an agent that died between spawning a VMM and recording
// it. Whatever still runs from such a dir (its VMM names sockets in it on its command line) is
// killed with its descendants, then the dir is removed.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { descendantsOf, readCmdline } from '@shellwego/kit/process';

export interface SweptDir {
  readonly dir: string;
  readonly killed: number[];
}

export async function sweepOrphanWorkDirs(vmDir: string, owned: ReadonlySet<string>): Promise<SweptDir[]> {
  const swept: SweptDir[] = [];
  const names = await readdir(vmDir).catch(() => [] as string[]);
  for (const name of names) {
    const dir = join(vmDir, name);
    if (owned.has(dir)) continue;
    const killed = await killProcessesUsing(dir);
    await rm(dir, { recursive: true, force: true });
    swept.push({ dir, killed });
  }
  return swept;
}

async function killProcessesUsing(dir: string): Promise<number[]> {
  const marker = `${dir}/`;
  const killed: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const args = readCmdline(Number(entry));
    if (args === undefined || !args.some((arg) => arg.includes(marker))) continue;
    const pid = Number(entry);
    for (const target of [pid, ...descendantsOf(pid)]) {
      try {
        process.kill(target, 'SIGKILL');
        killed.push(target);
      } catch {
        // Already gone.
      }
    }
  }
  return killed;
}
