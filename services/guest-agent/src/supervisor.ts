// The workload's lifecycle: prepare its root, start it with its environment, follow its output
// and exit, signal it, restart it with new secrets, probe its health.
import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate, timestampNow } from '@bufbuild/protobuf/wkt';
import { type HealthCheck, OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { type WaitResponse, WaitResponseSchema } from '@shellwego/contracts/guest/v1/guest_pb';
import { type OutputChunk, OutputLog, SerialQueue } from '@shellwego/kit/async';
import { errnoCode, isErrno } from '@shellwego/kit/errors';
import type { Logger } from '@shellwego/kit/log';
import { type SecretBytes, wipeAll } from '@shellwego/kit/secret-bytes';
import { configureNetwork, type NetworkSettings } from './guest-network.js';
import { type ExecOutcome, runProbe } from './health-probe.js';
import { launchProbe, launchProcess, launchWorkload, type VmTarget } from './launcher.js';
import { type NamespacePids, namespacePids } from './namespace-pids.js';
import { findExecutable, resolveInRoot } from './path-in-root.js';
import { RootfsMounts } from './rootfs-mounts.js';
import { parseSignal } from './signals.js';
import { resolveUser, type UserIds } from './user-spec.js';
import { childEnvironment, searchPathOf, validateEnvironment, validateShellNames, writeEnvironment } from './workload-env.js';
import { WorkloadError } from './workload-error.js';

export interface SupervisorOptions {
  readonly log: Logger;
  /** Where VM mode mounts the app root filesystem and its overlay. */
  readonly stateDir: string;
  /** busybox binary used to enter the workload root (VM mode). */
  readonly busybox: string;
  /** Root filesystem device when a Run names none; undefined: such a Run is process mode. */
  readonly defaultRootfsDevice: string | undefined;
  /** SIGTERM -> SIGKILL grace when restarting or shutting down. */
  readonly gracePeriodMs: number;
  /** Output (and process events) kept for Wait callers that connect late. */
  readonly outputBufferBytes: number;
}

/** Everything Run carries except the secrets, kept for restarts and health checks. */
export interface RunSpec {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly workdir: string;
  readonly user: string;
  readonly healthCheck: HealthCheck | undefined;
  readonly rootfsDevice: string;
  /** The VM's interface settings, applied before the workload starts; undefined: no network. */
  readonly network?: NetworkSettings | undefined;
}

export interface HealthReport {
  readonly workloadRunning: boolean;
  readonly healthy: boolean;
  readonly detail: string;
}

interface Prepared {
  /** VM mode: the workload root; undefined in process mode. */
  readonly root: string | undefined;
  readonly cwdHost: string;
  readonly ids: UserIds | undefined;
}

interface Workload {
  /** Process mode: the workload. VM mode: busybox unshare, whose status is the workload's. */
  readonly pid: number;
  /** VM mode: the namespace's init and the workload, once found. */
  inside: NamespacePids | undefined;
  readonly spec: RunSpec;
  readonly prepared: Prepared;
  running: boolean;
  exit: { code: number | null; signal: string | null } | undefined;
  readonly exited: Promise<void>;
}

// Bookkeeping cost charged per event on top of its output bytes.
const EVENT_OVERHEAD_BYTES = 64;
// How long a just started VM workload may take to be forked inside its namespace (TCG is slow).
const NAMESPACE_START_MS = 10_000;
const ROOT_IDS: UserIds = { uid: 0, gid: 0 };

export class WorkloadSupervisor {
  /** Process events and output since the last start, bounded in bytes. */
  private readonly events: OutputLog<WaitResponse>;
  private readonly mounts: RootfsMounts;
  private readonly serial = new SerialQueue();
  private spec: RunSpec | undefined;
  private current: Workload | undefined;

  constructor(private readonly options: SupervisorOptions) {
    this.events = new OutputLog(options.outputBufferBytes, { entryOverheadBytes: EVENT_OVERHEAD_BYTES });
    this.mounts = new RootfsMounts(options.stateDir, options.log);
  }

  /**
   * What is kept since the last start, then live events, until signal aborts. A reader that falls
   * behind by more than the buffer skips the output it missed.
   */
  async *follow(signal: AbortSignal): AsyncGenerator<WaitResponse> {
    for await (const entry of this.events.read(true, signal)) {
      yield 'stream' in entry ? outputEvent(entry) : entry;
    }
  }

  /** Starts the workload. The secrets are wiped whatever happens. */
  async run(spec: RunSpec, secrets: ReadonlyMap<string, SecretBytes>): Promise<number> {
    try {
      validateSpec(spec);
      validateEnvironment(spec.env, secrets);
      return await this.serial.run(async () => {
        this.assertNotRunning();
        // An exit still being recorded must land in the event log before the next start.
        await this.current?.exited;
        const prepared = await this.prepare(spec);
        this.spec = spec;
        return this.start(spec, prepared, secrets);
      });
    } finally {
      wipeAll(secrets.values());
    }
  }

  /** Restarts the workload (or starts it again after it exited) with new secrets. */
  async injectSecrets(secrets: ReadonlyMap<string, SecretBytes>): Promise<number> {
    try {
      const spec = this.spec;
      if (spec === undefined) {
        throw new WorkloadError('failed-precondition', 'no workload was run yet; call Run first');
      }
      validateEnvironment(spec.env, secrets);
      return await this.serial.run(async () => {
        await this.stop('new secrets');
        const prepared = await this.prepare(spec);
        return this.start(spec, prepared, secrets);
      });
    } finally {
      wipeAll(secrets.values());
    }
  }

  async signal(name: string): Promise<void> {
    const signal = parseSignal(name);
    const workload = this.current;
    if (workload === undefined || !workload.running) {
      throw new WorkloadError('failed-precondition', 'no workload is running');
    }
    const target = await this.signalTarget(workload);
    if (target === undefined) {
      throw new WorkloadError('failed-precondition', 'the workload has already exited');
    }
    try {
      process.kill(target, signal);
    } catch (err) {
      if (isErrno(err, 'ESRCH')) {
        throw new WorkloadError('failed-precondition', 'the workload has already exited');
      }
      throw err;
    }
    this.options.log.info({ workloadPid: workload.pid, signalledPid: target, signal }, 'signal sent to the workload');
  }

  async health(): Promise<HealthReport> {
    const workload = this.current;
    if (workload === undefined) {
      return { workloadRunning: false, healthy: false, detail: 'no workload has been run' };
    }
    if (!workload.running) {
      return { workloadRunning: false, healthy: false, detail: `the workload exited (${describeExit(workload.exit)})` };
    }
    const result = await runProbe(workload.spec.healthCheck, (argv, timeoutMs) => this.execProbe(workload, argv, timeoutMs));
    return { workloadRunning: workload.running, healthy: result.healthy && workload.running, detail: result.detail };
  }

  /** Stops the workload (SIGTERM, grace, SIGKILL) and unmounts its root. */
  async shutdown(): Promise<void> {
    await this.serial.run(async () => {
      await this.stop('agent shutting down');
      await this.mounts.release();
    });
  }

  private assertNotRunning(): void {
    const workload = this.current;
    if (workload?.running) {
      throw new WorkloadError(
        'failed-precondition',
        `a workload is already running (pid ${workload.pid}); stop it with Signal or restart it with InjectSecrets`,
      );
    }
  }

  private async prepare(spec: RunSpec): Promise<Prepared> {
    const device = spec.rootfsDevice || this.options.defaultRootfsDevice;
    const root = device === undefined ? undefined : await this.mounts.ensure(device);
    if (spec.network !== undefined) {
      await configureNetwork(this.options.busybox, spec.network, root, this.options.log);
    }
    const lookupRoot = root ?? '/';
    const ids = await this.resolveIds(lookupRoot, spec.user, root !== undefined);
    const workdir = spec.workdir || '/';
    const resolved = await resolveInRoot(lookupRoot, workdir);
    if (!resolved.exists) {
      if (root === undefined) {
        throw new WorkloadError('failed-precondition', `working directory ${workdir} does not exist`);
      }
      // As container runtimes do: a missing workdir is created (in the tmpfs overlay).
      await mkdir(resolved.hostPath, { recursive: true, mode: 0o755 });
    }
    const command = spec.argv[0] ?? '';
    const found = await findExecutable(lookupRoot, command, searchPathOf(spec.env), resolved.inRoot);
    const where = root === undefined ? 'on this host' : 'in the root filesystem';
    if (found.kind === 'missing') {
      throw new WorkloadError('not-found', `argv[0] "${command}" not found ${where} (searched PATH=${searchPathOf(spec.env)})`);
    }
    if (found.kind === 'not-executable') {
      throw new WorkloadError('failed-precondition', `argv[0] "${command}" resolves to ${found.inRoot}, which is not an executable file`);
    }
    return { root, cwdHost: resolved.hostPath, ids };
  }

  private async resolveIds(lookupRoot: string, user: string, vmMode: boolean): Promise<UserIds | undefined> {
    if (vmMode) {
      return resolveUser(lookupRoot, user);
    }
    if (user === '') {
      return undefined;
    }
    if (process.getuid?.() !== 0) {
      // The development driver runs the agent as the developer: it cannot switch users.
      this.options.log.warn({ user }, 'process mode without root: ignoring the workload user, running as the agent user');
      return undefined;
    }
    return resolveUser(lookupRoot, user);
  }

  /** Starts the workload; the caller wipes the secrets once this settles. */
  private async start(spec: RunSpec, prepared: Prepared, secrets: ReadonlyMap<string, SecretBytes>): Promise<number> {
    let child: ChildProcess;
    let environmentHandedOver: Promise<void> = Promise.resolve();
    if (prepared.root === undefined) {
      try {
        child = launchProcess({
          argv: spec.argv,
          cwdHost: prepared.cwdHost,
          ids: prepared.ids,
          env: childEnvironment(spec.env, secrets),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } finally {
        // spawn() has copied the environment into the child (or failed): the bytes go now.
        wipeAll(secrets.values());
      }
    } else {
      validateShellNames(spec.env, secrets);
      child = launchWorkload(this.vmTarget(spec.argv, prepared, prepared.root));
      // Down the pipe to the namespace's init, which reads it only in the child it execs into the workload.
      environmentHandedOver = writeEnvironment(child.stdio[3] as Writable, spec.env, secrets).catch((err: unknown) =>
        this.options.log.warn({ err: errnoCode(err) ?? String(err) }, 'the workload did not take its environment (it exited first)'),
      );
    }
    const exitInfo = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const pid = await spawned(child, prepared.root === undefined ? undefined : this.options.busybox);
    await environmentHandedOver;
    const workload: Workload = {
      pid,
      inside: undefined,
      spec,
      prepared,
      running: true,
      exit: undefined,
      exited: exitInfo.then(async (exit) => {
        workload.running = false;
        workload.exit = exit;
        // The whole group; in VM mode the namespace's init took everything inside with it.
        signalQuietly(-pid, 'SIGKILL');
        await streamsClosed(child, 1000);
        this.events.record(exitedEvent(pid, exit));
        this.options.log.info({ workloadPid: pid, exitCode: exit.code, signal: exit.signal }, 'workload exited');
      }),
    };
    this.current = workload;
    this.events.record(create(WaitResponseSchema, { time: timestampNow(), event: { case: 'started', value: { pid } } }), { restart: true });
    child.stdout?.on('data', (chunk: Buffer) => this.events.append(OutputStream.STDOUT, chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.events.append(OutputStream.STDERR, chunk));
    this.options.log.info(
      {
        workloadPid: pid,
        mode: prepared.root === undefined ? 'process' : 'vm',
        command: spec.argv[0],
        argc: spec.argv.length,
        envNames: Object.keys(spec.env).sort(),
        secretNames: [...secrets.keys()].sort(),
        user: spec.user || 'root',
        workdir: spec.workdir || '/',
      },
      'workload started',
    );
    return pid;
  }

  private async stop(reason: string): Promise<void> {
    const workload = this.current;
    if (workload === undefined) {
      return;
    }
    if (workload.running) {
      this.options.log.info({ workloadPid: workload.pid, reason, gracePeriodMs: this.options.gracePeriodMs }, 'stopping the workload');
      const target = await this.signalTarget(workload);
      if (target !== undefined) {
        signalQuietly(target, 'SIGTERM');
      }
      const grace = new AbortController();
      const graceOver = await Promise.race([
        workload.exited.then(() => false),
        sleep(this.options.gracePeriodMs, true, { signal: grace.signal }).catch(() => false),
      ]);
      grace.abort();
      if (graceOver) {
        this.options.log.warn({ workloadPid: workload.pid }, 'the workload outlived its grace period; killing it');
        signalQuietly(-workload.pid, 'SIGKILL');
      }
    }
    await workload.exited;
  }

  /**
   * Who receives the workload's signals: in process mode the workload; in VM mode the workload
   * inside its namespace (the namespace's init would ignore them), undefined once it is gone.
   */
  private async signalTarget(workload: Workload): Promise<number | undefined> {
    if (workload.prepared.root === undefined) {
      return workload.pid;
    }
    workload.inside ??= await namespacePids(workload.pid, NAMESPACE_START_MS);
    return workload.inside?.workload;
  }

  private vmTarget(argv: readonly string[], prepared: Prepared, root: string): VmTarget {
    return { root, busybox: this.options.busybox, argv, cwdHost: prepared.cwdHost, ids: prepared.ids ?? ROOT_IDS };
  }

  private async execProbe(workload: Workload, argv: readonly string[], timeoutMs: number): Promise<ExecOutcome> {
    if (argv.length === 0 || argv[0] === '') {
      return { exitCode: null, signal: null, timedOut: false, error: 'the exec probe has an empty argv' };
    }
    const root = workload.prepared.root;
    let initPid: number | undefined;
    if (root !== undefined) {
      workload.inside ??= await namespacePids(workload.pid, NAMESPACE_START_MS);
      initPid = workload.inside?.init;
      if (initPid === undefined) {
        return { exitCode: null, signal: null, timedOut: false, error: "the workload's namespace is gone" };
      }
    }
    // Probes get the explicit env only: the secrets were wiped after the workload started.
    const env = childEnvironment(workload.spec.env, new Map());
    return new Promise((resolve) => {
      let timedOut = false;
      let child: ChildProcess;
      try {
        child =
          root === undefined || initPid === undefined
            ? launchProcess({ argv, cwdHost: workload.prepared.cwdHost, ids: workload.prepared.ids, env, stdio: 'ignore' })
            : launchProbe(this.vmTarget(argv, workload.prepared, root), initPid, env);
      } catch (err) {
        resolve({ exitCode: null, signal: null, timedOut: false, error: err instanceof Error ? err.message : String(err) });
        return;
      }
      const timer = setTimeout(() => {
        timedOut = true;
        if (child.pid !== undefined) {
          signalQuietly(-child.pid, 'SIGKILL');
        }
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        resolve({ exitCode: null, signal: null, timedOut: false, error: errnoCode(err) ?? err.message });
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ exitCode: code, signal, timedOut });
      });
    });
  }
}

function outputEvent(chunk: OutputChunk): WaitResponse {
  return create(WaitResponseSchema, { time: timestampFromDate(chunk.time), event: { case: 'output', value: { stream: chunk.stream, data: chunk.data } } });
}

function exitedEvent(pid: number, exit: { code: number | null; signal: string | null }): WaitResponse {
  const value = exit.code === null ? { pid, signal: exit.signal ?? '' } : { pid, exitCode: exit.code, signal: '' };
  return create(WaitResponseSchema, { time: timestampNow(), event: { case: 'exited', value } });
}

function validateSpec(spec: RunSpec): void {
  if (spec.argv.length === 0 || spec.argv[0] === '') {
    throw new WorkloadError('invalid-argument', 'argv is empty: give the command to run as argv[0]');
  }
  if (spec.argv.some((arg) => arg.includes('\0'))) {
    throw new WorkloadError('invalid-argument', 'argv contains a NUL character');
  }
  if (spec.workdir !== '' && !spec.workdir.startsWith('/')) {
    throw new WorkloadError('invalid-argument', `workdir "${spec.workdir}" must be an absolute path`);
  }
}

/** Resolves with the pid once the child runs, or rejects with the reason it could not start. */
function spawned(child: ChildProcess, busybox: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('spawn', () => {
      child.off('error', onError);
      resolve(child.pid ?? 0);
    });
    const onError = (err: Error): void => {
      if (busybox !== undefined && isErrno(err, 'ENOENT')) {
        reject(new WorkloadError('failed-precondition', `cannot enter the workload root: ${busybox} is missing from the guest image`));
      } else if (isErrno(err, 'ENOENT')) {
        reject(new WorkloadError('not-found', 'argv[0] not found when starting the workload'));
      } else if (isErrno(err, 'EACCES', 'EPERM')) {
        reject(
          new WorkloadError('failed-precondition', `the workload could not be started: ${errnoCode(err)} (permissions of argv[0] or the working directory)`),
        );
      } else {
        reject(new WorkloadError('internal', `the workload could not be started: ${errnoCode(err) ?? err.message}`));
      }
    };
    child.once('error', onError);
  });
}

/** Waits until the child's pipes are drained and closed, at most timeoutMs (a detached grandchild may hold them). */
async function streamsClosed(child: ChildProcess, timeoutMs: number): Promise<void> {
  const streams = [child.stdout, child.stderr].filter((s) => s !== null && !s.closed);
  if (streams.length === 0) {
    return;
  }
  const deadline = new AbortController();
  await Promise.race([
    Promise.all(streams.map((s) => new Promise((resolve) => s?.once('close', resolve)))),
    sleep(timeoutMs, undefined, { signal: deadline.signal }).catch(() => undefined),
  ]);
  deadline.abort();
  for (const s of streams) {
    s?.destroy();
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function describeExit(exit: { code: number | null; signal: string | null } | undefined): string {
  if (exit === undefined) {
    return 'status unknown';
  }
  return exit.code !== null ? `code ${exit.code}` : `signal ${exit.signal ?? 'unknown'}`;
}
