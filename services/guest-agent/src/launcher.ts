// Starts a command as the workload: directly on the host (process mode), or inside the
// workload's root filesystem (VM mode) through busybox nsenter, which chroots, changes
// directory and drops to the workload's user before exec'ing argv exactly as given.
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import type { UserIds } from './user-spec.js';

export interface LaunchTarget {
  /** VM mode: the workload's root directory. Undefined in process mode. */
  readonly root: string | undefined;
  /** The busybox binary (VM mode). */
  readonly busybox: string;
  readonly argv: readonly string[];
  /** The working directory as a host path (already resolved inside the root). */
  readonly cwdHost: string;
  /** Ids to run as; undefined keeps the agent's own (process mode as non-root). */
  readonly ids: UserIds | undefined;
  readonly env: Record<string, string>;
  readonly stdio: StdioOptions;
}

/**
 * Spawns target in a new session and process group (so the whole tree can be signalled and
 * swept). Emits 'spawn' or 'error' like any ChildProcess.
 */
export function launch(target: LaunchTarget): ChildProcess {
  const [command, ...args] = target.argv;
  if (command === undefined) {
    throw new Error('launch: empty argv');
  }
  if (target.root === undefined) {
    return spawn(command, args, {
      argv0: command,
      cwd: target.cwdHost,
      env: target.env,
      detached: true,
      stdio: target.stdio,
      ...(target.ids !== undefined ? { uid: target.ids.uid, gid: target.ids.gid } : {}),
    });
  }
  const ids = target.ids;
  const dropPrivileges = ids !== undefined && (ids.uid !== 0 || ids.gid !== 0);
  return spawn(
    target.busybox,
    [
      'nsenter',
      `--root=${target.root}`,
      `--wd=${target.cwdHost}`,
      ...(dropPrivileges ? ['-G', String(ids.gid), '-S', String(ids.uid)] : []),
      '-F',
      '--',
      ...target.argv,
    ],
    // nsenter execs in place: the pid is the workload's, and argv[0] is looked up on the
    // environment's PATH inside the root.
    { env: target.env, detached: true, stdio: target.stdio },
  );
}
