// Query timings and, for Postgres, the connection pool, in the service's Prometheus registry.
// Labels are the schema, the statement's first keyword and the outcome: never the SQL text or
// its parameters (unbounded, and parameters may be sealed secrets or token hashes).
import type { LogEvent } from 'kysely';
import type pg from 'pg';
import { Gauge, Histogram, type Registry } from 'prom-client';
import { SECONDS_BUCKETS } from '../metrics/metrics-registry.js';

const OPERATIONS = new Set(['select', 'insert', 'update', 'delete', 'with', 'begin', 'commit', 'rollback', 'create', 'alter', 'set', 'notify', 'listen']);

/** A kysely log callback that times every query. */
export function queryTimer(registry: Registry, schema: string): (event: LogEvent) => void {
  const seconds = findOrCreate(
    registry,
    'shellwego_db_query_duration_seconds',
    () =>
      new Histogram({
        name: 'shellwego_db_query_duration_seconds',
        help: 'Database statements by schema, kind (select, insert, ..., other) and outcome (ok, error), in seconds.',
        labelNames: ['schema', 'operation', 'outcome'],
        buckets: [...SECONDS_BUCKETS],
        registers: [registry],
      }),
  );
  return (event) => {
    const outcome = event.level === 'error' ? 'error' : 'ok';
    seconds.observe({ schema, operation: operationOf(event.query.sql), outcome }, event.queryDurationMillis / 1000);
  };
}

interface WatchedPool {
  readonly pool: pg.Pool;
  readonly max: number;
}

const poolsOf = new WeakMap<Registry, Map<string, WatchedPool>>();

/**
 * Gauges read from the pg pools at scrape time: connections in use, idle and at most, and callers
 * waiting for one. Returns the function that stops watching (when the database closes).
 */
export function watchPool(registry: Registry, schema: string, pool: pg.Pool, max: number): () => void {
  let pools = poolsOf.get(registry);
  if (pools === undefined) {
    const watched = new Map<string, WatchedPool>();
    pools = watched;
    poolsOf.set(registry, watched);
    new Gauge({
      name: 'shellwego_db_pool_connections',
      help: 'Postgres connections of the pool by schema and state (in_use, idle, max).',
      labelNames: ['schema', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [name, { pool: p, max: most }] of watched) {
          this.set({ schema: name, state: 'in_use' }, p.totalCount - p.idleCount);
          this.set({ schema: name, state: 'idle' }, p.idleCount);
          this.set({ schema: name, state: 'max' }, most);
        }
      },
    });
    new Gauge({
      name: 'shellwego_db_pool_waiting_requests',
      help: 'Queries waiting for a free Postgres connection of the pool, by schema.',
      labelNames: ['schema'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [name, { pool: p }] of watched) this.set({ schema: name }, p.waitingCount);
      },
    });
  }
  const watched = pools;
  watched.set(schema, { pool, max });
  return () => {
    if (watched.get(schema)?.pool === pool) watched.delete(schema);
  };
}

function operationOf(sql: string): string {
  const keyword = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? '';
  return OPERATIONS.has(keyword) ? keyword : 'other';
}

/** One metric per name and registry, shared by every database the process opens. */
function findOrCreate<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}
