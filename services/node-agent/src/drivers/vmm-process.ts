// The VMM as a host process: spawned detached (an agent restart must not take the VMs down) with
// its output in a log file inside the work dir, launched (killed again if it never serves its
// socket or cannot be configured), watched until it exits, and terminated politely first, by
// SIGKILL after a grace period.
import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkIdentity, descendantsOf, isRunning } from '@shellwego/kit/process';
import { execa, type Options } from 'execa';
import { readLogTail } from './console-log.js';
import { VmDriverError, type VmExit } from './types.js';
import type { VmmCgroup } from './vmm-cgroup.js';
import { waitForSocket } from './wait-for-socket.js';

export interface SpawnVmmOptions {
  /** Receives the process's stdout and stderr (appended). */
  readonly logPath: string;
  readonly argv0?: string;
  /** The whole environment: nothing of the agent's is inherited. */
  readonly env: Readonly<Record<string, string>>;
  /** The cgroup the VMM runs in from its first instruction (it is started through a wrapper). */
  readonly cgroup?: VmmCgroup;
}

export interface SpawnedVmm {
  readonly pid: number;
  /** Settles when the process exits; never rejects. */
  readonly exited: Promise<VmExit>;
}

// While a process we did not start (an adopted VM) is watched, /proc is the only way to see it go.
const POLL_INTERVAL_MS = 500;
const STOP_POLL_MS = 20;
const KILL_WAIT_MS = 5_000;
// After a failed start, how long the VMM gets to exit by itself: its exit status and log say
// more than the socket error that revealed the failure.
const EXIT_SETTLE_MS = 250;

export async function spawnVmm(command: string, args: readonly string[], options: SpawnVmmOptions): Promise<SpawnedVmm> {
  const fd = openSync(options.logPath, 'a', 0o600);
  // A descriptor, not a pipe: the VMM keeps writing its log after the agent is gone. execa hands
  // an integer straight to spawn() (a "native" stdio value) although its types list only 1 and 2.
  const logFd = fd as unknown as Options['stdout'];
  const started = options.cgroup?.wrap(command, args) ?? { command, args };
  let child;
  try {
    child = execa(started.command, started.args, {
      detached: true,
      cleanup: false,
      reject: false,
      buffer: false,
      stdin: 'ignore',
      stdout: logFd,
      stderr: logFd,
      argv0: options.argv0,
      env: options.env,
      extendEnv: false,
    });
  } finally {
    // The child holds its own copy of the descriptor from here on.
    closeSync(fd);
  }
  const exited = child.then((result) => ({
    code: result.exitCode ?? null,
    signal: result.signal ?? null,
    spawnError: result.exitCode === undefined && result.signal === undefined ? result.shortMessage : undefined,
  }));
  const spawned = await Promise.race([new Promise<'spawned'>((resolve) => child.once('spawn', () => resolve('spawned'))), exited]);
  if (spawned !== 'spawned' || child.pid === undefined) {
    const reason = spawned === 'spawned' ? 'no pid' : (spawned.spawnError ?? `exit code ${spawned.code}, signal ${spawned.signal}`);
    throw new VmDriverError('unavailable', `cannot start ${command}: ${reason}`);
  }
  // The agent's event loop must not wait for its VMs.
  child.unref();
  return { pid: child.pid, exited: exited.then(({ code, signal }) => ({ code, signal })) };
}

export interface LaunchVmmOptions extends SpawnVmmOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** The Unix socket the VMM opens once it runs (API, QMP, guest agent). */
  readonly socket: string;
  /** For messages, e.g. "the QMP socket". */
  readonly socketWhat: string;
  /** How long the VMM may take to open its socket. */
  readonly timeoutMs: number;
  /** Runs once the socket accepts connections: configure the VM, check its status. */
  readonly configure?: (vmm: SpawnedVmm) => Promise<void>;
}

export type VmmLaunch =
  | { readonly ok: true; readonly vmm: SpawnedVmm }
  /** The VMM is gone (killed and reaped); exit is set when it had exited by itself. */
  | { readonly ok: false; readonly error: unknown; readonly exit: VmExit | undefined; readonly log: string };

/**
 * Spawns the VMM and waits until it serves its socket and is configured. A VMM that cannot be
 * spawned throws VmDriverError('unavailable'); one that fails after that is killed and reported.
 */
export async function launchVmm(options: LaunchVmmOptions): Promise<VmmLaunch> {
  const vmm = await spawnVmm(options.command, options.args, options);
  try {
    await waitForSocket(options.socket, {
      timeoutMs: options.timeoutMs,
      exited: vmm.exited,
      what: options.socketWhat,
      diagnostics: () => logTail(options.logPath),
    });
    await options.configure?.(vmm);
    return { ok: true, vmm };
  } catch (error) {
    const exit = await Promise.race([vmm.exited, sleep(EXIT_SETTLE_MS).then(() => undefined)]);
    sendSignal(vmm.pid, 'SIGKILL');
    await waitForExit(vmm.pid, KILL_WAIT_MS, vmm.exited);
    return { ok: false, error, exit, log: logTail(options.logPath) };
  }
}

/** Exit of a process we did not spawn (adopted): polled from /proc, lazily, only when awaited. */
export function watchAdopted(pid: number, identityArgs: readonly string[]): () => Promise<VmExit> {
  let promise: Promise<VmExit> | undefined;
  return () => {
    promise ??= new Promise<VmExit>((resolve) => {
      const timer = setInterval(() => {
        if (checkIdentity(pid, identityArgs).kind !== 'match') {
          clearInterval(timer);
          resolve({ code: null, signal: null });
        }
      }, POLL_INTERVAL_MS);
      timer.unref();
    });
    return promise;
  };
}

/** Resolves true once pid no longer runs, false at the deadline. */
export async function waitForExit(pid: number, timeoutMs: number, exited?: Promise<VmExit>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited?.then(() => (gone = true));
  for (;;) {
    if (gone || !isRunning(pid)) {
      return true;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      return false;
    }
    await Promise.race([exited, sleep(Math.min(STOP_POLL_MS, left))]);
  }
}

export interface TerminateOptions {
  readonly pid: number;
  /** The arguments that prove pid is still our VMM (never signal a recycled pid). */
  readonly identityArgs: readonly string[];
  /** Asks the VMM to shut down (QMP quit, SendCtrlAltDel, SIGTERM); errors are ignored. */
  readonly polite: () => Promise<void>;
  readonly graceMs: number;
  readonly exited?: Promise<VmExit>;
  /** Also SIGKILL every descendant (the process driver: the workload runs on the host). */
  readonly killTree?: boolean;
}

/** Stops the VMM: polite request, grace period, SIGKILL. Throws when it outlives SIGKILL. */
export async function terminateVmm(options: TerminateOptions): Promise<void> {
  const { pid } = options;
  if (checkIdentity(pid, options.identityArgs).kind !== 'match') {
    return;
  }
  await options.polite().catch(() => undefined);
  if (await waitForExit(pid, options.graceMs, options.exited)) {
    return;
  }
  if (checkIdentity(pid, options.identityArgs).kind !== 'match') {
    return;
  }
  // Collected before the kill: once the parent is gone its children are reparented and lost.
  const tree = options.killTree === true ? descendantsOf(pid) : [];
  sendSignal(pid, 'SIGKILL');
  for (const descendant of tree) {
    // Workloads run in their own session: kill the group too, then the process.
    sendSignal(-descendant, 'SIGKILL');
    sendSignal(descendant, 'SIGKILL');
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  if (!(await waitForExit(pid, KILL_WAIT_MS, options.exited))) {
    throw new VmDriverError('unavailable', `VMM pid ${pid} still runs ${KILL_WAIT_MS} ms after SIGKILL (stuck in the kernel?)`);
  }
  // SIGKILL only starts a process's end: it runs until the kernel has torn it down (tens of ms
  // for a workload holding a lot of memory, longer on a loaded host), and the VMM's own exit says
  // nothing about its descendants'. Stopped means every process killed here is gone.
  const survivors: number[] = [];
  for (const descendant of tree) {
    if (!(await waitForExit(descendant, Math.max(0, deadline - Date.now())))) {
      survivors.push(descendant);
    }
  }
  if (survivors.length > 0) {
    throw new VmDriverError(
      'unavailable',
      `pids ${survivors.join(', ')} below VMM pid ${pid} still run ${KILL_WAIT_MS} ms after SIGKILL (stuck in the kernel?)`,
    );
  }
}

export function sendSignal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/**
 * The last bytes of a VMM log or console, for an error message (VMM and guest console never carry
 * secrets): only those bytes are read, however large the file (and its rotated half) is.
 */
export function logTail(path: string, bytes = 1500): string {
  return readLogTail(path, bytes).toString('utf8').trim();
}
