// A canary value set and resolved through the real secrets process must not
// appear in plaintext anywhere: log output, error messages, list and audit
// responses, any table of the database, or any file under $SHELLWEGO_HOME.
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toBinary, toJsonString } from '@bufbuild/protobuf';
import { PGlite } from '@electric-sql/pglite';
import { ConnectError } from '@connectrpc/connect';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GetMasterKeyStatusResponseSchema,
  ListAuditEventsResponseSchema,
  ListSecretsResponseSchema,
  ListSecretVersionsResponseSchema,
  ResolveSecretsResponseSchema,
  SecretScopeKind,
} from '../../gen/shellwego/secrets/v1/secrets_pb.js';
import { createPostgresTestDatabase, postgresUnavailable } from '../support/postgres.js';
import type { PostgresTestDatabase } from '../support/postgres.js';
import { TestPlatform } from '../support/platform.js';
import { secretsClients } from './platform-clients.js';

type Row = Record<string, unknown>;

/** Every encoding in which a leaked value could show up. */
function encodings(canary: Buffer): Buffer[] {
  return [canary, Buffer.from(canary.toString('hex')), Buffer.from(canary.toString('base64')), Buffer.from(canary.toString('base64url'))];
}

function leaks(haystack: Buffer | string, canary: Buffer): boolean {
  const bytes = typeof haystack === 'string' ? Buffer.from(haystack) : haystack;
  return encodings(canary).some((form) => bytes.includes(form));
}

async function* filesUnder(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else if (entry.isFile()) yield path;
  }
}

async function dumpPglite(dataDir: string): Promise<Map<string, Row[]>> {
  const db = new PGlite(dataDir);
  try {
    return await dumpWith((text) => db.query<Row>(text).then((r) => r.rows));
  } finally {
    await db.close();
  }
}

async function dumpPostgres(url: string): Promise<Map<string, Row[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await dumpWith((text) => client.query<Row>(text).then((r) => r.rows));
  } finally {
    await client.end();
  }
}

/** Every row of every table in the service's schema. */
async function dumpWith(query: (text: string) => Promise<Row[]>): Promise<Map<string, Row[]>> {
  const tables = await query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'secrets' ORDER BY table_name`);
  const dump = new Map<string, Row[]>();
  for (const { table_name: table } of tables) dump.set(String(table), await query(`SELECT * FROM secrets."${String(table)}"`));
  return dump;
}

function rowLeaks(row: Row, canary: Buffer): boolean {
  return Object.values(row).some((value) => {
    if (value instanceof Uint8Array) return leaks(Buffer.from(value), canary);
    return leaks(typeof value === 'string' ? value : JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? '', canary);
  });
}

const postgresSkip = await postgresUnavailable();
if (postgresSkip !== undefined) console.warn(`skipping the Postgres canary test: ${postgresSkip}`);

const backends = [
  { name: 'PGlite', skip: undefined as string | undefined },
  { name: 'Postgres', skip: postgresSkip },
];

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`the canary through the real service on ${backend.name}`, () => {
    it('never appears in plaintext outside the resolve response', async () => {
      let database: PostgresTestDatabase | undefined;
      if (backend.name === 'Postgres') {
        database = await createPostgresTestDatabase();
        cleanups.push(() => database?.drop() ?? Promise.resolve());
      }
      const platform = await TestPlatform.start({
        services: ['secrets'],
        env: { SHELLWEGO_LOG_LEVEL: 'debug', ...(database === undefined ? {} : { SHELLWEGO_SECRETS_DATABASE: database.url }) },
      });
      cleanups.push(() => platform.stop());
      const clients = await secretsClients(platform);
      const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
      const shop = { kind: SecretScopeKind.APP, app: 'shop' };
      const workspace = { kind: SecretScopeKind.WORKSPACE };

      await clients.admin.setSecret({ scope: shop, name: 'CANARY', value: Buffer.from(canary) });
      await clients.admin.setSecret({ scope: workspace, name: 'CANARY_WS', value: Buffer.from(canary) });
      await clients.admin.setSecret({ scope: shop, name: 'CANARY', value: Buffer.concat([canary, Buffer.from('-v2')]) });
      const resolved = await clients.node.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['CANARY', 'CANARY_WS'] }) });
      expect(resolved.secrets.map((s) => Buffer.from(s.value).toString())).toEqual([`${canary.toString()}-v2`, canary.toString()]);

      // Failing calls, several carrying the canary in the request.
      const messages: string[] = [];
      const fail = async (call: () => Promise<unknown>) => {
        try {
          await call();
        } catch (err) {
          messages.push(ConnectError.from(err).message);
          return;
        }
        throw new Error('expected the call to fail');
      };
      await fail(() => clients.admin.setSecret({ scope: shop, name: '1NVALID', value: Buffer.from(canary) }));
      await fail(() => clients.admin.setSecret({ scope: { kind: 9 as SecretScopeKind }, name: 'X', value: Buffer.from(canary) }));
      await fail(() => clients.admin.setSecret({ scope: shop, name: 'TOO_BIG', value: Buffer.concat(Array.from({ length: 1700 }, () => canary)) }));
      await fail(() => clients.node.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['CANARY'], nodeId: 'elsewhere' }) }));
      await fail(() => clients.node.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['CANARY', 'MISSING'] }) }));
      await fail(() => clients.node.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['CANARY'] }, new Date(Date.now() - 3_600_000)) }));
      await fail(() => clients.admin.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['CANARY'] }) }));
      expect(messages).toHaveLength(7);

      // Rotation moves every data key; its logs and rows are searched too.
      await clients.admin.rotateMasterKey({});
      let status = await clients.admin.getMasterKeyStatus({});
      while (status.rewrapRunning) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = await clients.admin.getMasterKeyStatus({});
      }
      const responses = [
        toJsonString(ListSecretsResponseSchema, await clients.admin.listSecrets({})),
        toJsonString(ListSecretVersionsResponseSchema, await clients.admin.listSecretVersions({ scope: shop, name: 'CANARY' })),
        toJsonString(ListAuditEventsResponseSchema, await clients.admin.listAuditEvents({ page: { pageSize: 1000 } })),
        toJsonString(GetMasterKeyStatusResponseSchema, status),
      ];
      const audit = await clients.admin.listAuditEvents({ page: { pageSize: 1000 } });
      // Three sets, one granted and four refused resolves (the admin's is refused by the authorizer and audited through its refusal hook), one rotation.
      expect(audit.events).toHaveLength(9);

      expect(await platform.stopService('secrets')).toBe(0);
      const lines = platform.service('secrets').lines;
      expect(lines.some((line) => line.includes('ResolveSecrets'))).toBe(true);

      const dump = database === undefined ? await dumpPglite(join(platform.home, 'secrets', 'db')) : await dumpPostgres(database.url);
      expect([...dump.keys()]).toEqual(expect.arrayContaining(['audit_events', 'digest_key', 'keks', 'rotation', 'secret_versions', 'secrets']));
      expect(dump.get('secret_versions')?.length).toBe(3);
      expect(dump.get('audit_events')?.length).toBe(audit.events.length);

      const files: string[] = [];
      const leakingFiles: string[] = [];
      for await (const file of filesUnder(platform.home)) {
        files.push(file);
        if (leaks(await readFile(file), canary)) leakingFiles.push(file);
      }
      expect(files.some((file) => file.endsWith(join('secrets', 'master.key')))).toBe(true);
      if (database === undefined) expect(files.some((file) => file.includes(join('secrets', 'db', 'base')))).toBe(true);

      expect(lines.filter((line) => leaks(line, canary))).toEqual([]);
      expect(messages.filter((message) => leaks(message, canary))).toEqual([]);
      expect(responses.filter((response) => leaks(response, canary))).toEqual([]);
      for (const [table, rows] of dump) expect(rows.filter((row) => rowLeaks(row, canary)), table).toEqual([]);
      expect(leakingFiles).toEqual([]);
      // The search does find the canary where it belongs: in the resolve response, on the wire and as JSON.
      expect(leaks(Buffer.from(toBinary(ResolveSecretsResponseSchema, resolved)), canary)).toBe(true);
      expect(leaks(toJsonString(ResolveSecretsResponseSchema, resolved), canary)).toBe(true);
    });
  });
}
