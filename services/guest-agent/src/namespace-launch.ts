// VM mode: the command lines that put the workload in PID and mount namespaces of its own and
// run probes inside them. Pure argv construction; launcher.ts spawns them.
//
//   busybox unshare --pid --mount --fork --mount-proc=<root>/proc      (outside: waits, exits with the init's status)
//     busybox sh -c INIT_SCRIPT                                        (PID 1 inside: reaps, exits with the workload's status)
//       ( read the environment from fd 3; busybox nsenter --root --wd [-G -S] -F -- argv )   (PID 2: the workload)
import type { UserIds } from './user-spec.js';

/** The file descriptor the workload's environment arrives on (NUL-terminated NAME=value records). */
export const ENV_FD = 3;

/**
 * PID 1 of the workload's namespace: a busybox shell that runs the workload as a foreground child
 * (so SIGINT and SIGQUIT stay at their defaults, which a background job would have ignored),
 * reaps every orphan while it waits, and exits with the workload's status (128+N for a signal:
 * a namespace's init cannot die of a signal itself). Its child drops the shell's own variables,
 * exports the records read from fd 3 and execs the workload, so neither this shell nor unshare
 * ever holds the secrets in its environment. The agent signals the workload itself, not this
 * init, which ignores signals it has no handler for, as every namespace init does.
 * `exit "$?"` keeps the subshell from being run in place of PID 1.
 */
export const INIT_SCRIPT = [
  `( unset PATH PWD SHLVL OLDPWD; while IFS= read -r -d '' v; do export "$v" || exit 125; done <&${ENV_FD}; exec ${ENV_FD}<&-; exec "$@" )`,
  'exit "$?"',
].join('\n');

/** argv[0] of the namespace's init, as ps inside the namespace shows it. */
export const INIT_NAME = 'shellwego-init';

export interface NamespacedLaunch {
  readonly busybox: string;
  /** The workload root (host path in the agent's mount namespace). */
  readonly root: string;
  /** The working directory as a host path (already resolved inside the root). */
  readonly cwdHost: string;
  readonly ids: UserIds;
  readonly argv: readonly string[];
}

/** The full command (argv[0] is busybox) that starts the workload in new PID and mount namespaces. */
export function workloadArgv(launch: NamespacedLaunch): string[] {
  return [
    launch.busybox,
    'unshare',
    '--pid',
    '--mount',
    '--fork',
    // Mounted by the namespace's init, over the agent's /proc in the workload root (in the new
    // mount namespace only): the workload sees its own PID namespace.
    `--mount-proc=${launch.root}/proc`,
    '--',
    launch.busybox,
    'sh',
    '-c',
    INIT_SCRIPT,
    INIT_NAME,
    launch.busybox,
    'nsenter',
    ...rootOptions(launch.root, launch.cwdHost, launch.ids),
    '-F',
    '--',
    ...launch.argv,
  ];
}

export interface ProbeLaunch extends NamespacedLaunch {
  /** The namespace's init (host pid): the probe joins its PID and mount namespaces. */
  readonly initPid: number;
}

/**
 * The full command that runs argv in the workload's namespaces, root, working directory and user.
 * The root and working directory are opened through /proc/<init>/root, so they are the workload's
 * mounts (its own /proc included), not the agent's. nsenter forks to enter the PID namespace and
 * exits with the probe's status.
 */
export function probeArgv(launch: ProbeLaunch): string[] {
  const through = `/proc/${launch.initPid}/root`;
  return [
    launch.busybox,
    'nsenter',
    '-t',
    String(launch.initPid),
    '--pid',
    '--mount',
    ...rootOptions(`${through}${launch.root}`, `${through}${launch.cwdHost}`, launch.ids),
    '--',
    ...launch.argv,
  ];
}

/** busybox nsenter's chroot, working directory and (unless root) user switch. */
function rootOptions(root: string, cwd: string, ids: UserIds): string[] {
  const dropPrivileges = ids.uid !== 0 || ids.gid !== 0;
  return [`--root=${root}`, `--wd=${cwd}`, ...(dropPrivileges ? ['-G', String(ids.gid), '-S', String(ids.uid)] : [])];
}
