import { createServer } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { databaseUnreachable } from './database-unreachable.js';

function withCode(message: string, code: string, syscall?: string): Error {
  return Object.assign(new Error(message), { code, ...(syscall === undefined ? {} : { syscall }) });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('databaseUnreachable', () => {
  it.each([
    ['57P01 admin shutdown', withCode('terminating connection due to administrator command', '57P01')],
    ['57P02 crash shutdown', withCode('terminating connection due to crash of another server process', '57P02')],
    ['57P03 cannot connect now', withCode('the database system is starting up', '57P03')],
    ['08006 connection failure', withCode('connection failure', '08006')],
    ['08001 cannot establish', withCode('could not connect', '08001')],
    ['ECONNREFUSED on connect', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED', 'connect')],
    ['ECONNRESET mid-query', withCode('read ECONNRESET', 'ECONNRESET', 'read')],
    ['a Unix socket that is gone', withCode('connect ENOENT /run/pg/.s.PGSQL.5432', 'ENOENT', 'connect')],
    ['a lost connection', new Error('Connection terminated unexpectedly')],
    ['a connect timeout', new Error('timeout exceeded when trying to connect')],
    ['an ending pool', new Error('Cannot use a pool after calling end on the pool')],
    ['a closed client', new Error('Client was closed and is not queryable')],
    ['PGlite closing', new Error('PGlite is closing')],
    ['a cause chain', new Error('cannot store the secret', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED', 'connect') })],
    ['happy eyeballs', new AggregateError([withCode('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED', 'connect')])],
  ])('is true for %s', (_, err) => {
    expect(databaseUnreachable(err)).toBe(true);
  });

  it.each([
    ['a unique violation', withCode('duplicate key value', '23505')],
    ['a cancelled query (class 57, not 57P)', withCode('canceling statement due to user request', '57014')],
    ['a missing file', withCode("ENOENT: no such file or directory, open '/x'", 'ENOENT', 'open')],
    ['a full disk', withCode('ENOSPC: no space left on device, write', 'ENOSPC', 'write')],
    ['a plain error', new Error('something else')],
    ['not an error', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('is false for %s', (_, err) => {
    expect(databaseUnreachable(err)).toBe(false);
  });

  it('recognizes pg failing to connect to a closed port', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: await closedPort(), user: 'x', database: 'x', connectionTimeoutMillis: 5_000 });
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(databaseUnreachable(err)).toBe(true);
  });

  it('recognizes a pg pool that was ended', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: await closedPort() });
    await pool.end();
    const err = await pool.query('SELECT 1').catch((e: unknown) => e);
    expect(databaseUnreachable(err)).toBe(true);
  });

  it('recognizes a closed PGlite, and not its query errors', async () => {
    const db = await PGlite.create();
    const syntax = await db.query('SELEC 1').catch((e: unknown) => e);
    expect(databaseUnreachable(syntax)).toBe(false);
    await db.close();
    const closed = await db.query('SELECT 1').catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(Error);
    expect(databaseUnreachable(closed)).toBe(true);
  }, 60_000);
});
