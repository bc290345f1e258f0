// Where a plaintext secret could land on a host, searched in every encoding a careless program
// might use: files under given directories (recursively, every byte), log lines, and every row
// of every table of the control services' embedded databases.
import { PGlite } from '@electric-sql/pglite';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

type Row = Record<string, unknown>;

export function encodings(secret: Buffer): Buffer[] {
  return [secret, Buffer.from(secret.toString('hex')), Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('base64url'))];
}

export function leaks(haystack: Buffer | string, secret: Buffer): boolean {
  const bytes = typeof haystack === 'string' ? Buffer.from(haystack) : haystack;
  return encodings(secret).some((form) => bytes.includes(form));
}

export interface FileScan {
  readonly files: number;
  readonly leaking: string[];
}

/** Every regular file under the directories (sockets, fifos and devices are not files). */
export async function scanFiles(dirs: readonly string[], secret: Buffer): Promise<FileScan> {
  let files = 0;
  const leaking: string[] = [];
  for (const dir of dirs) {
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      files += 1;
      const bytes = await readFile(path).catch(() => undefined);
      if (bytes !== undefined && leaks(bytes, secret)) leaking.push(path);
    }
  }
  return { files, leaking };
}

export interface DumpScan {
  readonly tables: string[];
  readonly rows: number;
  readonly leaking: string[];
}

/** Every row of every table in `<home>/<service>/db` (PGlite; the service must be stopped). */
export async function scanDatabases(home: string, services: readonly string[], secret: Buffer): Promise<DumpScan> {
  const tables: string[] = [];
  const leaking: string[] = [];
  let rows = 0;
  for (const service of services) {
    const db = new PGlite(join(home, service, 'db'));
    try {
      const names = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [service]);
      for (const { table_name: table } of names.rows) {
        tables.push(`${service}.${table}`);
        const result = await db.query<Row>(`SELECT * FROM "${service}"."${table}"`);
        rows += result.rows.length;
        result.rows.forEach((row, index) => {
          if (rowLeaks(row, secret)) leaking.push(`${service}.${table} row ${index}`);
        });
      }
    } finally {
      await db.close();
    }
  }
  return { tables, rows, leaking };
}

function rowLeaks(row: Row, secret: Buffer): boolean {
  return Object.values(row).some((value) => {
    if (value instanceof Uint8Array) return leaks(Buffer.from(value), secret);
    const text = typeof value === 'string' ? value : JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    return leaks(text ?? '', secret);
  });
}
