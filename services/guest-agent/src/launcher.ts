// Starts a command as the workload or its exec probe: directly on the host (process mode), or
// in VM mode inside the workload's root filesystem, user and PID and mount namespaces through
// busybox (namespace-launch.ts holds the command lines).
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { probeArgv, workloadArgv } from './namespace-launch.js';
import type { UserIds } from './user-spec.js';

export interface ProcessTarget {
  readonly argv: readonly string[];
  readonly cwdHost: string;
  /** Ids to run as; undefined keeps the agent's own (process mode as non-root). */
  readonly ids: UserIds | undefined;
  readonly env: Record<string, string>;
  readonly stdio: StdioOptions;
}

export interface VmTarget {
  /** The workload's root directory. */
  readonly root: string;
  readonly busybox: string;
  readonly argv: readonly string[];
  /** The working directory as a host path (already resolved inside the root). */
  readonly cwdHost: string;
  readonly ids: UserIds;
}

/**
 * Process mode: spawns argv on the host in a new session and process group (so the whole tree
 * can be signalled and swept). Emits 'spawn' or 'error' like any ChildProcess.
 */
export function launchProcess(target: ProcessTarget): ChildProcess {
  const [command, ...args] = target.argv;
  if (command === undefined) {
    throw new Error('launch: empty argv');
  }
  return spawn(command, args, {
    argv0: command,
    cwd: target.cwdHost,
    env: target.env,
    detached: true,
    stdio: target.stdio,
    ...(target.ids !== undefined ? { uid: target.ids.uid, gid: target.ids.gid } : {}),
  });
}

/**
 * VM mode: starts the workload in new PID and mount namespaces, in a new session and process
 * group. The pid is busybox unshare's, which exits with the workload's status. The process has
 * an empty environment: the caller writes the workload's onto stdio[ENV_FD] and closes it.
 */
export function launchWorkload(target: VmTarget): ChildProcess {
  const [busybox, ...args] = workloadArgv(target);
  // stdio[3] (ENV_FD) is the pipe the environment goes down.
  return spawn(busybox ?? target.busybox, args, { env: {}, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
}

/** VM mode: runs a probe inside the namespaces of the workload whose init is initPid. */
export function launchProbe(target: VmTarget, initPid: number, env: Record<string, string>): ChildProcess {
  const [busybox, ...args] = probeArgv({ ...target, initPid });
  return spawn(busybox ?? target.busybox, args, { env, detached: true, stdio: 'ignore' });
}
