import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEST_POSTGRES_URL = process.env.SHELLWEGO_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * A fresh database on the test Postgres, dropped by drop(); or why there is
 * none (no Postgres reachable), for a skip message.
 */
export async function createTestDatabase(): Promise<TestDatabase | { skip: string }> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  const name = `shellwego_sched_${randomBytes(5).toString('hex')}`;
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (error) {
    await admin.end().catch(() => undefined);
    return { skip: `no Postgres usable at ${TEST_POSTGRES_URL} (${error instanceof Error ? error.message : String(error)}); set SHELLWEGO_TEST_POSTGRES_URL` };
  }
  await admin.end();
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
