// Where a plaintext secret could land on a host, searched in every encoding a careless program
// might use: files under given directories (recursively, every byte), strings (log lines, CLI
// output, error messages), and every row of every table of a database, embedded (PGlite) or not.
// What cannot be read is reported, never skipped: an unread file is a hole in the sweep.
import { constants } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { errnoCode } from '@shellwego/kit/errors';
import pg from 'pg';

/** One secret or several: every search takes either. */
export type Secrets = Buffer | readonly Buffer[];

// Shorter values would have stable base64 middles of a few characters, found by chance anywhere.
const MIN_SECRET_BYTES = 16;

/**
 * Every form in which the secret's bytes could show up: raw; hex in lower and upper case; base64
 * and base64url at each of the three byte alignments; UTF-16LE of the secret as text.
 */
export function encodings(secret: Buffer): Buffer[] {
  if (secret.length < MIN_SECRET_BYTES) throw new RangeError(`a leak search needs a secret of at least ${MIN_SECRET_BYTES} bytes, got ${secret.length}`);
  const hex = secret.toString('hex');
  const forms = [secret, Buffer.from(hex), Buffer.from(hex.toUpperCase()), Buffer.from(secret.toString('utf8'), 'utf16le')];
  for (const offset of [0, 1, 2]) {
    for (const alphabet of ['base64', 'base64url'] as const) forms.push(stableBase64(secret, offset, alphabet));
  }
  return forms.filter((form, index) => forms.findIndex((other) => other.equals(form)) === index);
}

/**
 * The characters of base64(`offset` unknown bytes + secret + unknown bytes) that are the same
 * whatever the unknown bytes are. Each character carries 6 bits, so the first one or two that
 * share bits with the preceding bytes, and the last ones that share bits with what follows (or
 * with padding), differ from one context to the next: only the characters made of the secret's
 * bits alone are searched. Base64 repeats every 3 bytes, so offsets 0, 1 and 2 are every context.
 */
function stableBase64(secret: Buffer, offset: number, alphabet: 'base64' | 'base64url'): Buffer {
  const text = Buffer.concat([Buffer.alloc(offset), secret]).toString(alphabet);
  const first = Math.ceil((offset * 8) / 6);
  const end = Math.floor(((offset + secret.length) * 8) / 6);
  return Buffer.from(text.slice(first, end));
}

function patternsOf(secrets: Secrets): Buffer[] {
  return (Buffer.isBuffer(secrets) ? [secrets] : secrets).flatMap(encodings);
}

function contains(bytes: Buffer, patterns: readonly Buffer[]): boolean {
  return patterns.some((pattern) => bytes.includes(pattern));
}

export function leaks(haystack: Buffer | string, secrets: Secrets): boolean {
  return contains(typeof haystack === 'string' ? Buffer.from(haystack) : haystack, patternsOf(secrets));
}

export interface FileScan {
  /** Every regular file read. */
  readonly files: string[];
  readonly leaking: string[];
  /** Files and directories that exist but could not be read, as "path (code)": the sweep fails on them. */
  readonly unreadable: string[];
  /** Listed, then gone before they were read (only expected where something still writes). */
  readonly vanished: string[];
  /** Symbolic links, not followed: their targets are swept where they live, if anywhere. */
  readonly symlinks: string[];
}

export interface FileScanDeps {
  readonly readFile?: (path: string) => Promise<Buffer>;
}

// O_NOFOLLOW: a regular file swapped for a symlink after listing is not followed either.
const readRegular = (path: string): Promise<Buffer> => readFile(path, { flag: constants.O_RDONLY | constants.O_NOFOLLOW });

/** Every regular file under the directories, every byte; sockets, fifos and devices hold no data. */
export async function scanFiles(dirs: readonly string[], secrets: Secrets, deps: FileScanDeps = {}): Promise<FileScan> {
  const read = deps.readFile ?? readRegular;
  const patterns = patternsOf(secrets);
  const scan = { files: [] as string[], leaking: [] as string[], unreadable: [] as string[], vanished: [] as string[], symlinks: [] as string[] };
  const failed = (path: string, error: unknown, listed: boolean) => {
    const code = errnoCode(error) ?? String(error);
    if (listed && code === 'ENOENT') scan.vanished.push(path);
    else scan.unreadable.push(`${path} (${code})`);
  };
  const walk = async (dir: string, listed: boolean): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      failed(dir, error, listed);
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) scan.symlinks.push(path);
      else if (entry.isDirectory()) await walk(path, true);
      else if (entry.isFile()) {
        try {
          const bytes = await read(path);
          scan.files.push(path);
          if (contains(bytes, patterns)) scan.leaking.push(path);
        } catch (error) {
          failed(path, error, true);
        }
      }
    }
  };
  for (const dir of dirs) await walk(dir, false);
  return scan;
}

export type Row = Record<string, unknown>;
/** Runs one SQL statement and returns its rows: PGlite and pg both fit behind it. */
export type Query = (text: string) => Promise<Row[]>;

export async function withPglite<T>(dataDir: string, use: (query: Query) => Promise<T>): Promise<T> {
  const db = new PGlite(dataDir);
  try {
    return await use((text) => db.query<Row>(text).then((result) => result.rows));
  } finally {
    await db.close();
  }
}

export async function withPostgres<T>(url: string, use: (query: Query) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use((text) => client.query<Row>(text).then((result) => result.rows));
  } finally {
    await client.end();
  }
}

/** Every row of every table in the schemas, keyed "schema.table". */
export async function dumpTables(query: Query, schemas: readonly string[]): Promise<Map<string, Row[]>> {
  const dump = new Map<string, Row[]>();
  for (const schema of schemas) {
    const tables = await query(`SELECT table_name FROM information_schema.tables WHERE table_schema = '${schema}' ORDER BY table_name`);
    for (const { table_name: table } of tables) dump.set(`${schema}.${String(table)}`, await query(`SELECT * FROM "${schema}"."${String(table)}"`));
  }
  return dump;
}

/** The rows of a dump that hold a secret, as "schema.table row N". */
export function leakingRows(dump: ReadonlyMap<string, readonly Row[]>, secrets: Secrets): string[] {
  const patterns = patternsOf(secrets);
  return [...dump].flatMap(([table, rows]) => rows.flatMap((row, index) => (rowLeaks(row, patterns) ? [`${table} row ${index}`] : [])));
}

function rowLeaks(row: Row, patterns: readonly Buffer[]): boolean {
  return Object.values(row).some((value) => {
    if (value instanceof Uint8Array) return contains(Buffer.from(value), patterns);
    const text = typeof value === 'string' ? value : JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    return contains(Buffer.from(text ?? ''), patterns);
  });
}

export interface DumpScan {
  readonly tables: string[];
  readonly rows: number;
  readonly leaking: string[];
}

/** Every row of every table in `<home>/<service>/db` (PGlite; the service must be stopped). */
export async function scanDatabases(home: string, services: readonly string[], secrets: Secrets): Promise<DumpScan> {
  const tables: string[] = [];
  const leaking: string[] = [];
  let rows = 0;
  for (const service of services) {
    const dump = await withPglite(join(home, service, 'db'), (query) => dumpTables(query, [service]));
    tables.push(...dump.keys());
    rows += [...dump.values()].reduce((sum, table) => sum + table.length, 0);
    leaking.push(...leakingRows(dump, secrets));
  }
  return { tables, rows, leaking };
}

// A busy server renames and deletes files while they are read (recycled WAL segments, temp
// files, other tests' databases): the walk is repeated until one pass sees every file it lists.
const DATA_DIR_PASSES = 5;

/**
 * Every file of a running Postgres server's data directory (heap pages, WAL, ...), after a
 * CHECKPOINT has written every dirty page. Needs a superuser and a data directory on this host.
 */
export async function scanPostgresDataDir(url: string, secrets: Secrets): Promise<FileScan & { readonly dataDir: string }> {
  const dataDir = await withPostgres(url, async (query) => {
    await query('CHECKPOINT');
    return String((await query('SHOW data_directory'))[0]?.data_directory);
  });
  let scan = await scanFiles([dataDir], secrets);
  for (let pass = 1; pass < DATA_DIR_PASSES && scan.vanished.length > 0; pass += 1) {
    const again = await scanFiles([dataDir], secrets);
    // A leak or an unreadable file seen in any pass counts; a vanished one only if it is still missing.
    scan = { ...again, leaking: [...new Set([...scan.leaking, ...again.leaking])], unreadable: [...new Set([...scan.unreadable, ...again.unreadable])] };
  }
  return { ...scan, dataDir };
}
