// A canary value set and resolved through the real secrets process must not
// appear in plaintext anywhere: log output (at debug level), error messages, list
// and audit responses, any table of the database, any file under $SHELLWEGO_HOME
// (PGlite's data directory included) or, on Postgres, any file of the server's
// data directory (pages and WAL, after a CHECKPOINT). Searched by the one leak
// sweep, test/e2e/support/leak-scan.ts, in every encoding it knows.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { toBinary, toJsonString } from '@bufbuild/protobuf';
import { ConnectError } from '@connectrpc/connect';
import {
  GetMasterKeyStatusResponseSchema,
  ListAuditEventsResponseSchema,
  ListSecretsResponseSchema,
  ListSecretVersionsResponseSchema,
  ResolveSecretsResponseSchema,
  SecretScopeKind,
} from '@shellwego/contracts/secrets/v1/secrets_pb';
import { dumpTables, leakingRows, leaks, scanFiles, scanPostgresDataDir, withPglite, withPostgres } from '@shellwego/testing/leak-scan/leak-scan';
import { TestPlatform } from '@shellwego/testing/platform';
import type { PostgresTestDatabase } from '@shellwego/testing/postgres';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { secretsClients } from '@shellwego/testing/secrets-clients';
import { afterAll, describe, expect, it } from 'vitest';

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
    it('never appears in plaintext outside the resolve response', { timeout: 120_000 }, async () => {
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

      const dump =
        database === undefined
          ? await withPglite(join(platform.home, 'secrets', 'db'), (query) => dumpTables(query, ['secrets']))
          : await withPostgres(database.url, (query) => dumpTables(query, ['secrets']));
      expect([...dump.keys()]).toEqual(
        expect.arrayContaining([
          'secrets.audit_events',
          'secrets.digest_key',
          'secrets.keks',
          'secrets.rotation',
          'secrets.secret_versions',
          'secrets.secrets',
        ]),
      );
      expect(dump.get('secrets.secret_versions')?.length).toBe(3);
      expect(dump.get('secrets.audit_events')?.length).toBe(audit.events.length);

      // Every file under the home, PGlite's data directory (heap pages, WAL) included.
      const files = await scanFiles([platform.home], canary);
      expect(files.files.some((file) => file.endsWith(join('secrets', 'master.key')))).toBe(true);
      if (database === undefined) {
        for (const part of ['base', 'pg_wal'])
          expect(
            files.files.some((file) => file.includes(join('secrets', 'db', part))),
            part,
          ).toBe(true);
      }
      // Postgres: its data directory as stored on this host, every page and WAL segment, other tests' databases too.
      const dataDir = database === undefined ? undefined : await scanPostgresDataDir(database.url, canary);
      if (dataDir !== undefined) {
        for (const part of ['base', 'pg_wal'])
          expect(
            dataDir.files.some((file) => file.startsWith(join(dataDir.dataDir, part))),
            part,
          ).toBe(true);
      }

      expect(lines.filter((line) => leaks(line, canary))).toEqual([]);
      expect(messages.filter((message) => leaks(message, canary))).toEqual([]);
      expect(responses.filter((response) => leaks(response, canary))).toEqual([]);
      expect(leakingRows(dump, canary)).toEqual([]);
      expect(files.leaking).toEqual([]);
      expect(files.unreadable).toEqual([]);
      expect(files.vanished).toEqual([]);
      expect(dataDir?.leaking ?? []).toEqual([]);
      expect(dataDir?.unreadable ?? []).toEqual([]);
      expect(dataDir?.vanished ?? []).toEqual([]);
      // The search does find the canary where it belongs: in the resolve response, on the wire and as JSON.
      expect(leaks(Buffer.from(toBinary(ResolveSecretsResponseSchema, resolved)), canary)).toBe(true);
      expect(leaks(toJsonString(ResolveSecretsResponseSchema, resolved), canary)).toBe(true);
    });
  });
}
