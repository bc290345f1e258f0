// The per-instance work dir: created private and empty at boot, removed whole at stop (or moved
// aside for inspection when the agent keeps stopped VMs' work dirs). It holds sockets, pid files
// and console logs only, never a secret.
import { randomBytes } from 'node:crypto';
import { cp, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VmDriverError } from './types.js';

export async function prepareWorkDir(workDir: string, instanceId: string): Promise<void> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const leftovers = await readdir(workDir);
  if (leftovers.length > 0) {
    throw new VmDriverError(
      'invalid-spec',
      `instance ${instanceId}: work dir ${workDir} is not empty (${leftovers.slice(0, 5).join(', ')}): a VM of this instance may still run; adopt or stop it first`,
    );
  }
}

/** Empties the work dir but keeps it (between a failed KVM attempt and the TCG retry). */
export async function clearWorkDir(workDir: string): Promise<void> {
  for (const entry of await readdir(workDir)) {
    await rm(`${workDir}/${entry}`, { recursive: true, force: true });
  }
}

/**
 * Removes the work dir; with keepIn (setting KEEP_VM_WORK_DIRS) moves it under that directory
 * instead, as `<name>-<time>-<random>`, so its console and VMM logs can be inspected later.
 */
export async function removeWorkDir(workDir: string, keepIn?: string): Promise<void> {
  if (keepIn === undefined) {
    await rm(workDir, { recursive: true, force: true });
    return;
  }
  await mkdir(keepIn, { recursive: true, mode: 0o700 });
  const target = join(keepIn, `${basename(workDir)}-${Date.now()}-${randomBytes(3).toString('hex')}`);
  try {
    await rename(workDir, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code !== 'EXDEV') throw err;
    // Another filesystem: copy what a copy can hold (sockets cannot be copied), then remove.
    await cp(workDir, target, { recursive: true, filter: copyable });
    await rm(workDir, { recursive: true, force: true });
  }
}

async function copyable(path: string): Promise<boolean> {
  const entry = await lstat(path);
  return entry.isFile() || entry.isDirectory();
}
