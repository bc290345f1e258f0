// The per-instance work dir: created private and empty at boot, removed whole at stop. It holds
// sockets, pid files and console logs only, never a secret.
import { mkdir, readdir, rm } from 'node:fs/promises';
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

export async function removeWorkDir(workDir: string): Promise<void> {
  await rm(workDir, { recursive: true, force: true });
}
