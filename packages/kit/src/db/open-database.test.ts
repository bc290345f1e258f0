import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ColumnType, Generated, Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUniqueViolation } from './errors.js';
import { MigrationError } from './migrate.js';
import type { Database } from './open-database.js';
import { openDatabase } from './open-database.js';

interface Meta {
  kind: string;
  tags: string[];
}
interface Tables {
  item: {
    id: Generated<bigint>;
    name: string;
    payload: Uint8Array;
    created_at: ColumnType<Date, Date | undefined, Date>;
    meta: ColumnType<Meta, string, string>;
  };
  counter: { id: number; n: bigint };
}

/** The same migrations on every backend; `runs` records each up() so re-runs are visible. */
function migrationsFor(runs: string[]): Record<string, Migration> {
  return {
    '0001_items': {
      async up(db: Kysely<unknown>) {
        runs.push('0001_items');
        await db.schema
          .createTable('item')
          .addColumn('id', 'bigint', (c) => c.generatedAlwaysAsIdentity().primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('payload', 'bytea', (c) => c.notNull())
          .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
          .addColumn('meta', 'jsonb', (c) => c.notNull())
          .execute();
      },
    },
    '0002_counter': {
      async up(db: Kysely<unknown>) {
        runs.push('0002_counter');
        await db.schema
          .createTable('counter')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('n', 'bigint', (c) => c.notNull())
          .execute();
        await sql`INSERT INTO counter (id, n) VALUES (1, 0)`.execute(db);
      },
    },
  };
}

const POSTGRES_URL = process.env.SHELLWEGO_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresUnreachableReason(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return `no Postgres is reachable at ${url} (${err instanceof Error ? err.message : String(err)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const postgresSkip = await postgresUnreachableReason(POSTGRES_URL);
if (postgresSkip !== undefined) {
  console.warn(`skipping the Postgres database tests: ${postgresSkip}`);
}

const tmpRoot = mkdtempSync(join(tmpdir(), 'shellwego-db-test-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

const randomSchema = (): string => `t_${randomBytes(6).toString('hex')}`;

interface Backend {
  name: 'pglite' | 'postgres';
  skip: string | undefined;
  url: string;
  schema: string;
  cleanup(): Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'pglite',
    skip: undefined,
    // A directory that does not exist yet: openDatabase must create it, private.
    url: join(tmpRoot, 'state', 'scheduler-db'),
    schema: 'scheduler',
    cleanup: async () => undefined,
  },
  (() => {
    const schema = randomSchema();
    return {
      name: 'postgres' as const,
      skip: postgresSkip,
      url: POSTGRES_URL,
      schema,
      cleanup: async () => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      },
    };
  })(),
];

for (const backend of backends) {
  const title = backend.skip === undefined ? `openDatabase on ${backend.name}` : `openDatabase on ${backend.name} (skipped: ${backend.skip})`;
  describe.skipIf(backend.skip !== undefined)(title, () => {
    const runs: string[] = [];
    let database: Database<Tables>;
    let db: Kysely<Tables>;

    beforeAll(async () => {
      database = await openDatabase<Tables>({ url: backend.url, schema: backend.schema, migrations: migrationsFor(runs) });
      db = database.db;
    });
    afterAll(async () => {
      await database?.close();
      await backend.cleanup();
    });

    it('runs the migrations in order, inside the service schema', async () => {
      expect(database.dialect).toBe(backend.name);
      expect(runs).toEqual(['0001_items', '0002_counter']);
      const tables = await sql<{ table_name: string }>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = ${backend.schema} ORDER BY table_name`.execute(db);
      expect(tables.rows.map((r) => r.table_name)).toEqual(['counter', 'item', 'kysely_migration', 'kysely_migration_lock']);
      const current = await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db);
      expect(current.rows[0]?.s).toBe(backend.schema);
      if (backend.name === 'pglite') {
        expect(statSync(backend.url).mode & 0o777).toBe(0o700);
      }
    });

    if (backend.name === 'pglite') {
      it('refuses a second open of the same data directory while it is open', async () => {
        await expect(openDatabase({ url: backend.url, schema: backend.schema, migrations: {} })).rejects.toThrow(`is in use by process ${process.pid}`);
      });
    }

    it('round-trips bytea, timestamptz, jsonb and a bigint identity in a transaction', async () => {
      const payload = randomBytes(32);
      const meta: Meta = { kind: 'app', tags: ['a', 'b'] };
      const when = new Date('2024-05-06T07:08:09.123Z');
      const { id } = await db.transaction().execute(async (tx) => {
        const inserted = await tx
          .insertInto('item')
          .values({ name: 'roundtrip', payload, created_at: when, meta: JSON.stringify(meta) })
          .returning('id')
          .executeTakeFirstOrThrow();
        await tx
          .updateTable('item')
          .set({ meta: JSON.stringify({ ...meta, kind: 'updated' }) })
          .where('id', '=', inserted.id)
          .execute();
        return inserted;
      });
      expect(typeof id).toBe('bigint');
      const row = await db.selectFrom('item').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(Buffer.isBuffer(row.payload)).toBe(true);
      expect(Buffer.compare(Buffer.from(row.payload), payload)).toBe(0);
      expect(row.created_at).toBeInstanceOf(Date);
      expect(row.created_at.toISOString()).toBe(when.toISOString());
      expect(row.meta).toEqual({ kind: 'updated', tags: ['a', 'b'] });
      const big = await sql<{ v: bigint; a: bigint[] }>`SELECT 9007199254740993::int8 AS v, ARRAY[1, NULL, 9007199254740993]::int8[] AS a`.execute(db);
      expect(big.rows[0]).toEqual({ v: 9007199254740993n, a: [1n, null, 9007199254740993n] });
    });

    it('rolls a failing transaction back completely, unseen by a query issued meanwhile', async () => {
      const before = await db.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow();
      let outside: Promise<Array<{ name: string }>> | undefined;
      await expect(
        db.transaction().execute(async (tx) => {
          await tx
            .insertInto('item')
            .values([
              { name: 'rb-1', payload: Buffer.from([1]), meta: '{}' },
              { name: 'rb-2', payload: Buffer.from([2]), meta: '{}' },
            ])
            .execute();
          await tx.updateTable('counter').set({ n: sql`n + 100` }).where('id', '=', 1).execute();
          // Not awaited: on a single-connection PGlite it must wait for the transaction, not join it.
          outside = db.selectFrom('item').select('name').where('name', 'like', 'rb-%').execute();
          throw new Error('abort on purpose');
        }),
      ).rejects.toThrow('abort on purpose');
      expect(await outside).toEqual([]);
      expect(await db.selectFrom('item').select('name').where('name', 'like', 'rb-%').execute()).toEqual([]);
      const after = await db.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow();
      expect(after.n).toBe(before.n);
    });

    it('detects a unique violation with isUniqueViolation', async () => {
      await db
        .insertInto('item')
        .values({ name: 'dup', payload: Buffer.from([0]), meta: '{}' })
        .execute();
      const duplicate = await db
        .insertInto('item')
        .values({ name: 'dup', payload: Buffer.from([0]), meta: '{}' })
        .execute()
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(isUniqueViolation(duplicate)).toBe(true);
      const notNull = await sql`INSERT INTO item (name, payload, meta) VALUES (NULL, '\\x00', '{}')`.execute(db).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(notNull).toBeInstanceOf(Error);
      expect(isUniqueViolation(notNull)).toBe(false);
    });

    it('keeps 20 concurrent transactions from interleaving', async () => {
      const start = (await db.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow()).n;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          db.transaction().execute(async (tx) => {
            const { n } = await tx.selectFrom('counter').select('n').where('id', '=', 1).forUpdate().executeTakeFirstOrThrow();
            await tx
              .insertInto('item')
              .values({ name: `tx-${i}`, payload: Buffer.from([i]), meta: JSON.stringify({ kind: 'tx', tags: [] }) })
              .execute();
            // Read-modify-write across awaits: another transaction's statements landing here would be lost or fail.
            const mine = await tx.selectFrom('item').select('name').where('name', 'like', 'tx-%').execute();
            expect(mine.map((r) => r.name)).toContain(`tx-${i}`);
            await tx
              .updateTable('counter')
              .set({ n: n + 1n })
              .where('id', '=', 1)
              .execute();
          }),
        ),
      );
      console.info(`${backend.name}: 20 concurrent transactions took ${Math.round(performance.now() - started)} ms`);
      const end = (await db.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow()).n;
      expect(end - start).toBe(20n);
      const names = await db.selectFrom('item').select('name').where('name', 'like', 'tx-%').execute();
      expect(names).toHaveLength(20);
    });

    it('reopens with the data kept, runs only new migrations, and names a failing one', async () => {
      await database.close();
      if (backend.name === 'pglite') {
        // A lock left by a process that died must not keep the service from starting.
        writeFileSync(`${backend.url}.lock`, `${spawnSync(process.execPath, ['-e', '']).pid}\n`);
      }
      const broken: Record<string, Migration> = {
        ...migrationsFor(runs),
        '0003_broken': {
          async up(db: Kysely<unknown>) {
            runs.push('0003_broken');
            await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
            await sql`SELECT * FROM no_such_table`.execute(db);
          },
        },
      };
      const failure = await openDatabase<Tables>({ url: backend.url, schema: backend.schema, migrations: broken }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(MigrationError);
      expect((failure as MigrationError).migrationName).toBe('0003_broken');
      expect((failure as Error).message).toMatch(/^migration "0003_broken" failed in schema "[a-z0-9_]+": .*no_such_table/);

      database = await openDatabase<Tables>({ url: backend.url, schema: backend.schema, migrations: migrationsFor(runs) });
      db = database.db;
      if (backend.name === 'pglite') {
        expect(readFileSync(`${backend.url}.lock`, 'utf8').trim()).toBe(String(process.pid));
      }
      expect(runs).toEqual(['0001_items', '0002_counter', '0003_broken']);
      const count = await db
        .selectFrom('item')
        .select((eb) => eb.fn.countAll<string>().as('c'))
        .executeTakeFirstOrThrow();
      expect(Number(count.c)).toBe(22);
      // The failed migration left nothing behind (transactional DDL).
      const halfDone = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = ${backend.schema} AND table_name = 'half_done'`.execute(db);
      expect(halfDone.rows[0]?.n).toBe(0);
    });
  });
}

describe.skipIf(postgresSkip !== undefined)('openDatabase on postgres: the pool', () => {
  it('gives every pooled connection the service schema and keeps schemas apart', async () => {
    const [schemaA, schemaB] = [randomSchema(), randomSchema()];
    const a = await openDatabase<Tables>({ url: POSTGRES_URL, schema: schemaA, migrations: migrationsFor([]), poolSize: 4 });
    const b = await openDatabase<Tables>({ url: POSTGRES_URL, schema: schemaB, migrations: migrationsFor([]) });
    try {
      await a.db
        .insertInto('item')
        .values({ name: 'only-in-a', payload: Buffer.from([1]), meta: '{}' })
        .execute();
      expect(await b.db.selectFrom('item').select('name').execute()).toEqual([]);
      // Four transactions held open at once force four distinct pooled connections.
      let arrived = 0;
      let release: () => void = () => undefined;
      const allArrived = new Promise<void>((resolve) => (release = resolve));
      const seen = await Promise.all(
        Array.from({ length: 4 }, () =>
          a.db.transaction().execute(async (tx) => {
            const row = await sql<{ pid: number; schema: string }>`SELECT pg_backend_pid() AS pid, current_schema() AS schema`.execute(tx);
            if (++arrived === 4) {
              release();
            }
            await allArrived;
            return row.rows[0];
          }),
        ),
      );
      expect(new Set(seen.map((r) => r?.pid)).size).toBe(4);
      expect(seen.every((r) => r?.schema === schemaA)).toBe(true);
    } finally {
      await a.close();
      await b.close();
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schemaA}" CASCADE; DROP SCHEMA IF EXISTS "${schemaB}" CASCADE`);
      await client.end();
    }
  });
});

describe('openDatabase on in-memory PGlite', () => {
  it('migrates and queries a memory:// database with nothing on disk', async () => {
    const runs: string[] = [];
    const database = await openDatabase<Tables>({ url: 'memory://', schema: 'registry', migrations: migrationsFor(runs) });
    try {
      expect(database.dialect).toBe('pglite');
      expect(runs).toEqual(['0001_items', '0002_counter']);
      const row = await database.db.selectFrom('counter').select('n').executeTakeFirstOrThrow();
      expect(row.n).toBe(0n);
      expect(existsSync('memory:') || existsSync('memory:.lock')).toBe(false);
    } finally {
      await database.close();
    }
  });
});

describe('openDatabase argument checks', () => {
  it('rejects a bad schema name before connecting', async () => {
    for (const schema of ['Public', '1abc', 'a-b', 'x; drop', 'a'.repeat(64), '']) {
      await expect(openDatabase({ url: 'memory://', schema, migrations: {} })).rejects.toThrow(`invalid database schema name "${schema}"`);
    }
  });

  it('names a data directory path that is blocked by a file', async () => {
    const file = join(tmpRoot, 'not-a-dir');
    writeFileSync(file, '');
    await expect(openDatabase({ url: file, schema: 'x', migrations: {} })).rejects.toThrow(
      `cannot create the PGlite data directory ${file}: a file is in the way`,
    );
    await expect(openDatabase({ url: join(file, 'db'), schema: 'x', migrations: {} })).rejects.toThrow('a file is in the way');
  });

  it('refuses a data directory path that was never expanded', async () => {
    await expect(openDatabase({ url: '$SHELLWEGO_HOME/scheduler/db', schema: 'x', migrations: {} })).rejects.toThrow(
      'database path "$SHELLWEGO_HOME/scheduler/db" was not expanded',
    );
  });

  it('rejects an unknown URL scheme', async () => {
    await expect(openDatabase({ url: 'mysql://db/x', schema: 'x', migrations: {} })).rejects.toThrow(/unsupported database URL scheme "mysql:\/\/"/);
  });

  it('names an unreachable Postgres without printing its password', async () => {
    const err = await openDatabase({ url: 'postgres://svc:hunter2canary@127.0.0.1:1/x', schema: 'x', migrations: {} }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^cannot prepare schema "x" in database postgres:\/\/svc:\*\*\*@127\.0\.0\.1:1\/x: .*ECONNREFUSED/);
    expect(err?.message).not.toContain('hunter2canary');
  });
});

describe('isUniqueViolation', () => {
  it('is false for errors that are not a unique violation', () => {
    expect(isUniqueViolation(new Error('x'))).toBe(false);
    expect(isUniqueViolation(null)).toBe(false);
    expect(isUniqueViolation({ code: 'EPIPE' })).toBe(false);
    expect(isUniqueViolation(new Error('wrapped', { cause: { code: '23505' } }))).toBe(true);
  });
});
