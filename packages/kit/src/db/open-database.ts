// Opens a service's database: Postgres for a postgres:// URL, embedded PGlite for a directory.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { CompiledQuery, Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import pg from 'pg';
import { errnoCode, isErrno } from '../errors/errno.js';
import type { Logger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/metrics-registry.js';
import { queryTimer, watchPool } from './database-metrics.js';
import type { DirLock } from './dir-lock.js';
import { lockDataDir } from './dir-lock.js';
import { sqlState } from './errors.js';
import { migrateToLatest } from './migrate.js';
import { pgliteParsers, pgTypes } from './type-parsers.js';

export interface OpenDatabaseOptions {
  /** postgres://... or postgresql://... for Postgres; a directory path (or memory://) for PGlite. */
  url: string;
  /** The service's own schema; every unqualified name resolves there. */
  schema: string;
  /** Applied in lexical name order at open, e.g. { '0001_init': {...} }. */
  migrations: Readonly<Record<string, Migration>>;
  logger?: Logger;
  /** Postgres connections in the pool; default 10. */
  poolSize?: number;
  /** The process's registry: query timings (and the Postgres pool) are recorded there. */
  metrics?: MetricsRegistry;
}

export interface Database<DB> {
  db: Kysely<DB>;
  dialect: 'postgres' | 'pglite';
  close(): Promise<void>;
}

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const DEFAULT_POOL_SIZE = 10;
const CONNECT_TIMEOUT_MS = 10_000;

export async function openDatabase<DB>(options: OpenDatabaseOptions): Promise<Database<DB>> {
  const { schema, logger } = options;
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`invalid database schema name "${schema}": use lower-case letters, digits and _ (at most 63, not starting with a digit)`);
  }
  const target = describeTarget(options.url);
  const { db, dialect, lock, unwatch } = target.kind === 'postgres' ? openPostgres<DB>(options) : openPglite<DB>(target.dataDir, options);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= db.destroy().finally(() => {
      unwatch?.();
      lock?.release();
    }));
  try {
    await createSchema(db, schema, target.label);
    const applied = await migrateToLatest(db, schema, options.migrations);
    logger?.info({ dialect, schema, database: target.label, applied }, applied.length > 0 ? 'database migrated' : 'database up to date');
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { db, dialect, close };
}

type Target = { kind: 'postgres'; label: string } | { kind: 'pglite'; label: string; dataDir: string | undefined };

function describeTarget(url: string): Target {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    return { kind: 'postgres', label: withoutPassword(url) };
  }
  if (scheme === 'memory') {
    return { kind: 'pglite', label: 'memory://', dataDir: undefined };
  }
  if (scheme !== undefined) {
    throw new Error(`unsupported database URL scheme "${scheme}://": use postgres://, postgresql://, or a PGlite data directory path`);
  }
  // Expansion belongs to config (the database() setting); a path still starting with ~ or $ was missed.
  if (url.startsWith('~') || url.startsWith('$')) {
    throw new Error(`database path "${url}" was not expanded: load it with the database() or path() config setting`);
  }
  const dataDir = resolve(url);
  return { kind: 'pglite', label: dataDir, dataDir };
}

/** The URL for logs and errors: a password would otherwise land in both. */
function withoutPassword(url: string): string {
  if (!URL.canParse(url)) {
    return 'postgres://(unparseable URL)';
  }
  const parsed = new URL(url);
  if (parsed.password !== '') {
    parsed.password = '***';
  }
  return parsed.toString();
}

interface Opened<DB> {
  db: Kysely<DB>;
  dialect: 'postgres' | 'pglite';
  lock?: DirLock;
  /** Stops reporting the pool in metrics. */
  unwatch?: () => void;
}

function openPostgres<DB>(options: OpenDatabaseOptions): Opened<DB> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A startup parameter, so every pooled connection gets it, including ones opened later.
    options: `-c search_path="${options.schema}"`,
    types: pgTypes,
  });
  // Without a listener, an idle client's connection error (e.g. Postgres restart) kills the process.
  pool.on('error', (err) => options.logger?.warn({ err }, 'idle Postgres connection failed; the pool will reconnect'));
  const metrics = options.metrics;
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), ...(metrics ? { log: queryTimer(metrics, options.schema) } : {}) });
  const unwatch = metrics ? watchPool(metrics, options.schema, pool, options.poolSize ?? DEFAULT_POOL_SIZE) : undefined;
  return { db, dialect: 'postgres', ...(unwatch ? { unwatch } : {}) };
}

function openPglite<DB>(dataDir: string | undefined, options: OpenDatabaseOptions): Opened<DB> {
  const schema = options.schema;
  let lock: DirLock | undefined;
  if (dataDir !== undefined) {
    ensureDataDir(dataDir);
    lock = lockDataDir(dataDir);
  }
  const dialect = new PGliteDialect({
    pglite: () => new PGlite({ dataDir: dataDir ?? 'memory://', parsers: pgliteParsers }),
    // PGlite is one session: setting search_path once covers every query.
    onCreateConnection: async (connection) => {
      await connection.executeQuery(CompiledQuery.raw(`SET search_path TO "${schema}"`));
    },
  });
  const log = options.metrics ? { log: queryTimer(options.metrics, schema) } : {};
  return { db: new Kysely<DB>({ dialect, ...log }), dialect: 'pglite', ...(lock ? { lock } : {}) };
}

function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const reason = isErrno(err, 'EEXIST', 'ENOTDIR') ? 'a file is in the way' : (errnoCode(err) ?? String(err));
    throw new Error(`cannot create the PGlite data directory ${dataDir}: ${reason}`, { cause: err });
  }
}

async function createSchema<DB>(db: Kysely<DB>, schema: string, label: string): Promise<void> {
  try {
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
  } catch (err) {
    // Two replicas starting at once can both pass IF NOT EXISTS; the loser's error is harmless.
    const state = sqlState(err);
    if (state === '23505' || state === '42P06') {
      return;
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot prepare schema "${schema}" in database ${label}: ${reason}`, { cause: err });
  }
}
