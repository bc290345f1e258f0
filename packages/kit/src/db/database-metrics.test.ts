// Query timings and pool gauges of a real database: embedded PGlite and the test Postgres server.
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../metrics/metrics-registry.js';
import { openDatabase } from './open-database.js';

const postgresSkip = await postgresUnavailable();
if (postgresSkip !== undefined) console.warn(`[database-metrics] SKIPPING the Postgres case: ${postgresSkip}`);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('database metrics', () => {
  it('times queries by schema, statement kind and outcome on PGlite, with no SQL in any label', async () => {
    const registry = createMetricsRegistry();
    const database = await openDatabase({ url: 'memory://', schema: 'metered', migrations: {}, metrics: registry });
    cleanups.push(() => database.close());
    await sql`SELECT 1`.execute(database.db);
    await expect(sql`SELECT * FROM no_such_table`.execute(database.db)).rejects.toThrow();
    const text = await registry.metrics();
    expect(text).toMatch(/shellwego_db_query_duration_seconds_count\{schema="metered",operation="select",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/shellwego_db_query_duration_seconds_count\{schema="metered",operation="select",outcome="error"\} 1/);
    expect(text).not.toContain('no_such_table');
    // PGlite is one session, not a pool.
    expect(text).not.toContain('shellwego_db_pool_connections');
  });

  it.skipIf(postgresSkip !== undefined)('reports the Postgres pool: connections in use, idle and at most, and waiting queries', async () => {
    const target = await createPostgresTestDatabase();
    cleanups.push(() => target.drop());
    const registry = createMetricsRegistry();
    const database = await openDatabase({ url: target.url, schema: 'metered', migrations: {}, metrics: registry, poolSize: 2 });
    cleanups.push(() => database.close());
    // Three sleeps on a pool of two: one waits while the others hold both connections.
    const sleeping = [1, 2, 3].map(() => sql`SELECT pg_sleep(0.5)`.execute(database.db));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const during = await registry.metrics();
    expect(during).toContain('shellwego_db_pool_connections{schema="metered",state="in_use"} 2');
    expect(during).toContain('shellwego_db_pool_connections{schema="metered",state="max"} 2');
    expect(during).toContain('shellwego_db_pool_waiting_requests{schema="metered"} 1');
    await Promise.all(sleeping);
    const after = await registry.metrics();
    expect(after).toContain('shellwego_db_pool_connections{schema="metered",state="in_use"} 0');
    expect(after).toContain('shellwego_db_pool_waiting_requests{schema="metered"} 0');
    expect(after).toMatch(/shellwego_db_query_duration_seconds_count\{schema="metered",operation="select",outcome="ok"\} [3-9]/);
  });
});
