// `npm start` as an operator runs it, for the launcher suites and the footprint benchmark: in its
// own process group (as a terminal runs it), optionally inside a memory cgroup from its first
// instruction, with a fresh home; stopped with Ctrl-C (SIGINT to the group), after which every
// process it had started must be gone, Postgres's own processes (each in a session of its own)
// included.
import { type ChildProcess, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { deployables } from '@shellwego/build';
import { defaultPorts } from '@shellwego/kit/config';
import { descendantsOf, readCmdline } from '@shellwego/kit/process';
import { execa } from 'execa';
import { statOf } from './proc-stat.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const cliEntry = join(repoRoot, 'cli/bin/shellwego.js');
const PLATFORM_PORTS = [defaultPorts.scheduler, defaultPorts.secrets, defaultPorts.registry, defaultPorts.nodeAgent];

export interface NpmStartOptions {
  readonly home: string;
  /** More environment for the launcher (and, through it, every service). */
  readonly env?: Readonly<Record<string, string>>;
  /** cgroup.procs of a cgroup to run everything in: the shell that execs npm enters it first. */
  readonly cgroupProcs?: string;
  /** A network namespace (ip netns) to run everything in: its own loopback, ports and interfaces. */
  readonly netns?: string;
}

/** A process, told apart from a later one that reuses its pid by its start time. */
interface ProcessId {
  readonly pid: number;
  readonly startTime: string;
}

/** Still the process that was seen, and not a zombie. */
function isSameProcess({ pid, startTime }: ProcessId): boolean {
  const now = statOf(pid);
  return now !== undefined && now.startTime === startTime && now.state !== 'Z' && now.state !== 'X';
}

/** Whether one of the process's arguments, resolved against its working directory, is `file` (package.json runs the launcher by a relative path). */
function runsFile(pid: number, file: string): boolean {
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return (readCmdline(pid) ?? []).some((arg) => resolve(cwd, arg) === file);
  } catch {
    return false;
  }
}

/** Why the platform's fixed ports cannot be used now, or undefined when all are free. */
export async function platformPortsBusy(): Promise<string | undefined> {
  const busy: number[] = [];
  for (const port of PLATFORM_PORTS) {
    const listening = await new Promise<boolean>((done) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (listening) busy.push(port);
  }
  return busy.length === 0
    ? undefined
    : `something already listens on 127.0.0.1:${busy.join(', ')}, the platform's fixed ports (another npm start on this host?)`;
}

export class NpmStart {
  /** Every line npm, the launcher and the services printed, stdout and stderr. */
  readonly lines: string[] = [];
  /** npm's exit code, or the signal npm re-raised on itself after its script ended. */
  readonly exited: Promise<number | string | null>;
  /** Every process seen in the tree, to check after the stop that none outlived it. */
  private readonly seen = new Map<number, ProcessId>();

  private constructor(
    readonly child: ChildProcess,
    readonly home: string,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream !== null) createInterface({ input: stream }).on('line', (line) => this.lines.push(line));
    }
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  }

  static start(options: NpmStartOptions): NpmStart {
    // Never the host's interfaces or nftables rules: npm start would turn the VM network on as root.
    const env = { ...process.env, SHELLWEGO_HOME: options.home, SHELLWEGO_NODE_AGENT_NETWORK: 'false', ...options.env };
    // The shell moves itself into the cgroup before npm exists, so every process is charged there.
    const npm = options.netns === undefined ? ['npm', 'start'] : ['ip', 'netns', 'exec', options.netns, 'npm', 'start'];
    const child =
      options.cgroupProcs === undefined
        ? spawn(npm[0] as string, npm.slice(1), { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', options.cgroupProcs, ...npm], {
            cwd: repoRoot,
            env,
            detached: true,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    return new NpmStart(child, options.home);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('npm start did not start');
    return this.child.pid;
  }

  /** The first line from index `from` on containing `text`; fails if npm exits first. */
  async waitFor(text: string, timeoutMs: number, from = 0): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (let index = from; ; ) {
      for (; index < this.lines.length; index++) {
        const line = this.lines[index] as string;
        if (line.includes(text)) return line;
      }
      if (Date.now() > until || this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`"${text}" did not appear within ${timeoutMs / 1000} s; last lines:\n${this.lines.slice(-30).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The launcher: the process in npm's tree that runs the launcher bundle. */
  launcherPid(): number {
    const pid = descendantsOf(this.pid).find((p) => runsFile(p, deployables.launcher.outfile));
    if (pid === undefined) throw new Error(`no process below npm (pid ${this.pid}) runs ${deployables.launcher.outfile}`);
    return pid;
  }

  /** npm and every process below it now; each is remembered for stop()'s check. */
  tree(): number[] {
    const pids = [this.pid, ...descendantsOf(this.pid)];
    for (const pid of pids) {
      const startTime = statOf(pid)?.startTime;
      if (startTime !== undefined && !this.seen.has(pid)) this.seen.set(pid, { pid, startTime });
    }
    return pids;
  }

  /** npm's exit, or 'timeout'; the tree is recorded meanwhile, for stop()'s check of what outlived it. */
  async untilExit(timeoutMs: number): Promise<number | string | null> {
    const until = Date.now() + timeoutMs;
    while (this.child.exitCode === null && this.child.signalCode === null && Date.now() < until) {
      this.tree();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return this.child.exitCode === null && this.child.signalCode === null ? 'timeout' : this.exited;
  }

  /**
   * Ctrl-C: SIGINT to the group, then npm's exit (npm re-raises SIGINT on itself once the
   * launcher exited). Returns the exit and the processes of the tree still running after it.
   */
  async stop(timeoutMs = 60_000): Promise<{ exit: number | string | null; leftovers: string[] }> {
    this.tree();
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(-this.pid, 'SIGINT');
    const exit = await Promise.race([this.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs))]);
    if (exit === 'timeout') {
      this.kill();
      throw new Error(`npm start did not exit within ${timeoutMs / 1000} s of SIGINT; last lines:\n${this.lines.slice(-30).join('\n')}`);
    }
    // Postgres's processes end just after their postmaster: give them a moment.
    const until = Date.now() + 10_000;
    let left = [...this.seen.values()].filter(isSameProcess);
    while (left.length > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = left.filter(isSameProcess);
    }
    return { exit, leftovers: left.map(({ pid }) => `pid ${pid} (${readCmdline(pid)?.join(' ').slice(0, 120) ?? '?'})`) };
  }

  /** For a finally: SIGKILL to the group and to every process ever seen in the tree that still runs. */
  kill(): void {
    this.tree();
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
    for (const id of this.seen.values()) {
      try {
        if (isSameProcess(id)) process.kill(id.pid, 'SIGKILL');
      } catch {
        // It ended in between.
      }
    }
  }
}

/** The shellwego CLI as the admin of the platform whose home is `home` (its default ports); never throws on a non-zero exit. */
export async function shellwego(
  home: string,
  args: readonly string[],
  input?: string | Buffer,
  env: Readonly<Record<string, string>> = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const result = await execa(process.execPath, [cliEntry, ...args], {
    cwd: repoRoot,
    reject: false,
    ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
    env: { ...env, SHELLWEGO_HOME: home },
  });
  return { exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr };
}
