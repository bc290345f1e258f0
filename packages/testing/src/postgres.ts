import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEST_POSTGRES_URL = process.env.SHELLWEGO_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Why Postgres tests cannot run here, or undefined when the test server answers. */
export async function postgresUnavailable(url = TEST_POSTGRES_URL): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return `no Postgres is reachable at ${url} (${err instanceof Error ? err.message : String(err)}); set SHELLWEGO_TEST_POSTGRES_URL`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface PostgresTestDatabase {
  /** A URL for a database of its own, e.g. postgres://postgres@127.0.0.1:5432/sw_test_1a2b3c. */
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh database on the test server, so runs and parallel test files never share tables. */
export async function createPostgresTestDatabase(url = TEST_POSTGRES_URL): Promise<PostgresTestDatabase> {
  const name = `sw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const own = new URL(url);
  own.pathname = `/${name}`;
  return {
    url: own.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
