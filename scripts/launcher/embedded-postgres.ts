// The platform's one embedded database for `npm start`: a private PostgreSQL server (Debian's
// binaries) under $SHELLWEGO_HOME/postgres, reachable only on a Unix socket in a directory only
// the platform can enter, run in the foreground as a child of the launcher so a crash is seen at
// once. Every control service gets its own schema in one database, as with an external server.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { findExecutable, isRunning } from '@shellwego/kit/process';
import pg from 'pg';

export const DATABASE_NAME = 'shellwego';
const POSTGRES_VERSIONS_DIR = '/usr/lib/postgresql';
const READY_TIMEOUT_MS = 60_000;

/**
 * Sized for the control plane of one host (a few connections per service, small tables): the
 * defaults (128 MB shared buffers, 100 connections, parallel workers) would be most of the
 * platform's memory. Durability settings stay at Postgres's safe defaults.
 */
const SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: "''",
  max_connections: '40',
  shared_buffers: '16MB',
  wal_buffers: '1MB',
  work_mem: '2MB',
  maintenance_work_mem: '16MB',
  max_worker_processes: '2',
  max_parallel_workers: '0',
  max_parallel_workers_per_gather: '0',
  autovacuum_max_workers: '1',
  jit: 'off',
  huge_pages: 'off',
  logging_collector: 'off',
  log_min_messages: 'warning',
  log_line_prefix: "'%m [%p] '",
};

export interface EmbeddedPostgresOptions {
  /** $SHELLWEGO_HOME/postgres: data/ and run/ (the socket) go here. */
  readonly dir: string;
  /** Each line the server logs. */
  readonly onLine: (line: string) => void;
  /** Directory with initdb and postgres; default the newest under /usr/lib/postgresql, else PATH. */
  readonly binDir?: string;
}

export interface PostgresExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Where the server's binaries are, or why there are none (the setup script installs them). */
export function findPostgresBinaries(binDir?: string): { initdb: string; postgres: string } {
  const candidates = binDir !== undefined ? [binDir] : versionDirs();
  for (const dir of candidates) {
    const initdb = join(dir, 'initdb');
    const postgres = join(dir, 'postgres');
    if (findExecutable(initdb) !== undefined && findExecutable(postgres) !== undefined) return { initdb, postgres };
  }
  const initdb = findExecutable('initdb');
  const postgres = findExecutable('postgres');
  if (binDir === undefined && initdb !== undefined && postgres !== undefined) return { initdb, postgres };
  throw new Error(
    `no PostgreSQL server binaries (initdb, postgres) in ${binDir ?? `${POSTGRES_VERSIONS_DIR}/*/bin or on PATH`}: install Debian's postgresql package (deploy/setup-host.sh does), or set SHELLWEGO_DATABASE_URL to an external Postgres`,
  );
}

function versionDirs(): string[] {
  if (!existsSync(POSTGRES_VERSIONS_DIR)) return [];
  return readdirSync(POSTGRES_VERSIONS_DIR)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(POSTGRES_VERSIONS_DIR, v, 'bin'));
}

/**
 * Postgres refuses to run as root. As root the server runs as the `postgres` system user (which
 * Debian's package creates); otherwise as whoever runs the launcher.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error("running as root, the embedded Postgres needs the postgres system user (Debian's postgresql package creates it)");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

export class EmbeddedPostgres {
  readonly dataDir: string;
  readonly socketDir: string;
  private child: ChildProcess | undefined;
  private exited: Promise<PostgresExit> | undefined;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.dataDir = join(options.dir, 'data');
    this.socketDir = join(options.dir, 'run');
  }

  /** What the services connect to: the platform's database over the private socket. */
  get url(): string {
    return `postgres:///${DATABASE_NAME}?host=${encodeURIComponent(this.socketDir)}&user=postgres`;
  }

  /** Creates the cluster on first use, starts the server and waits until it takes queries. */
  async start(): Promise<void> {
    const binaries = findPostgresBinaries(this.options.binDir);
    const user = serverUser();
    await this.prepareDirs(user);
    if (!existsSync(join(this.dataDir, 'PG_VERSION'))) this.initdb(binaries.initdb, user);
    await this.stopLeftover();
    const args = ['-D', this.dataDir, '-k', this.socketDir, ...Object.entries(SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v.replace(/^'|'$/g, '')}`])];
    const child = spawn(binaries.postgres, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ?? {}),
      // The server must not see the platform's settings (TLS key paths, tokens) in its environment.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
    });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', this.options.onLine);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await this.waitReady();
    await this.ensureDatabase();
  }

  /** Resolves when the server process ends (a crash, or after stop()). */
  get ended(): Promise<PostgresExit> {
    if (this.exited === undefined) throw new Error('the embedded Postgres was not started');
    return this.exited;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Fast shutdown: open transactions roll back, everything committed is on disk. */
  async stop(timeoutMs = 30_000): Promise<void> {
    const child = this.child;
    if (child === undefined || this.exited === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const result = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
    if (result === undefined) {
      child.kill('SIGQUIT');
      await this.exited;
    }
  }

  private async prepareDirs(user: { uid: number; gid: number } | undefined): Promise<void> {
    if (user !== undefined) await reachableBy(dirname(this.options.dir), user);
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    // The socket directory holds a fresh socket and lock file per start; only the server user
    // (and root) may enter it, which is what makes trust authentication on it safe.
    await rm(this.socketDir, { recursive: true, force: true });
    await mkdir(this.socketDir, { mode: 0o700 });
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    if (user !== undefined) {
      for (const dir of [this.options.dir, this.dataDir, this.socketDir]) await chown(dir, user.uid, user.gid);
    }
  }

  private initdb(initdb: string, user: { uid: number; gid: number } | undefined): void {
    try {
      execFileSync(initdb, ['-D', this.dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=reject', '-E', 'UTF8', '--locale=C.UTF-8'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(user ?? {}),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
      throw new Error(`initdb of the embedded Postgres in ${this.dataDir} failed: ${stderr || String(error)}`);
    }
  }

  /** A server left running by a launcher that was killed holds the data directory: stop it. */
  private async stopLeftover(): Promise<void> {
    const pidFile = join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || !isRunning(pid)) return;
    this.options.onLine(`stopping a server left running by an earlier launcher (pid ${pid})`);
    process.kill(pid, 'SIGINT');
    for (let waited = 0; isRunning(pid); waited += 100) {
      if (waited > 30_000) throw new Error(`the Postgres server left running in ${this.dataDir} (pid ${pid}) did not stop`);
      await sleep(100);
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = '';
    for (;;) {
      if (this.child?.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the embedded Postgres exited while starting (${this.child?.exitCode ?? this.child?.signalCode}); its log lines above say why`);
      }
      const client = new pg.Client({ connectionString: this.url.replace(`///${DATABASE_NAME}?`, '///postgres?'), connectionTimeoutMillis: 2_000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      } finally {
        await client.end().catch(() => undefined);
      }
      if (Date.now() > deadline) throw new Error(`the embedded Postgres did not accept connections within ${READY_TIMEOUT_MS / 1000} s: ${last}`);
      await sleep(100);
    }
  }

  private async ensureDatabase(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url.replace(`///${DATABASE_NAME}?`, '///postgres?') });
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
      if (found.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE_NAME}`);
    } finally {
      await client.end();
    }
  }
}

/**
 * Makes the platform's home searchable (not listable) by the server user, then checks every
 * directory above it is too: the server must reach its data directory by path.
 */
async function reachableBy(home: string, user: { uid: number; gid: number }): Promise<void> {
  const mode = (await stat(home)).mode & 0o777;
  // Search without read: names inside cannot be listed; everything secret below has its own 0700/0600.
  if ((mode & 0o001) === 0) await chmod(home, mode | 0o001);
  for (let dir = home; ; dir = dirname(dir)) {
    const st = await stat(dir);
    const searchable = (st.uid === user.uid && st.mode & 0o100) || (st.gid === user.gid && st.mode & 0o010) || st.mode & 0o001;
    if (!searchable) {
      throw new Error(
        `the embedded Postgres runs as the postgres user, which cannot reach ${home}: ${dir} is closed to it; choose a SHELLWEGO_HOME it can reach (root's default is /var/lib/shellwego) or set SHELLWEGO_DATABASE_URL to an external Postgres`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}
