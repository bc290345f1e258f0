import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toJsonString } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { ListSecretsResponseSchema, SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { Principal } from '@shellwego/kit/pki';
import type { PostgresTestDatabase } from '@shellwego/testing/postgres';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretsHarness } from '../test/support/secrets-harness.js';
import { AuditLog } from './audit-log.js';
import { MIN_BLOB_BYTES } from './crypto/index.js';
import { InFlightWrites } from './in-flight-writes.js';
import type { KekSource, LoadedKek } from './kek/index.js';
import { KekError, kekIdFor } from './kek/index.js';
import { SecretStore } from './secret-store.js';

const NODE: Principal = { kind: 'node', id: 'n1' };
const workspace = { kind: SecretScopeKind.WORKSPACE };
const app = (name: string) => ({ kind: SecretScopeKind.APP, app: name });
const bytes = (text: string) => Buffer.from(text, 'utf8');

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('expected the call to fail');
}

const postgresSkip = await postgresUnavailable();
if (postgresSkip !== undefined) console.warn(`skipping the Postgres secret store tests: ${postgresSkip}`);

interface Backend {
  readonly name: string;
  readonly skip: string | undefined;
  database(): Promise<{ url: string; drop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PGlite',
    skip: undefined,
    async database() {
      const dir = await mkdtemp(join(tmpdir(), 'shellwego-secrets-pglite-'));
      return { url: join(dir, 'db'), drop: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  { name: 'Postgres', skip: postgresSkip, database: (): Promise<PostgresTestDatabase> => createPostgresTestDatabase() },
];

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`secret store on ${backend.name}`, () => {
    let database: { url: string; drop(): Promise<void> };
    let harness: SecretsHarness;

    beforeAll(async () => {
      database = await backend.database();
      harness = await SecretsHarness.open({ database: database.url, keepVersions: 3 });
    });
    afterAll(async () => {
      await harness?.close();
      await database?.drop();
    });

    const resolve = (appName: string, names: string[]) =>
      harness.client(NODE).resolveSecrets({ grant: harness.grant({ nodeId: 'n1', app: appName, secretNames: names }) });

    it('round-trips values through the database and lists metadata only', async () => {
      const admin = harness.client();
      const value = randomBytes(48);
      const set = await admin.setSecret({ scope: app('shop'), name: 'DB_PASSWORD', value: Buffer.from(value) });
      expect(set.secret).toMatchObject({ name: 'DB_PASSWORD', latestVersion: 1, versionCount: 1, updatedBy: 'spiffe://shellwego/user/admin' });
      expect(set.secret?.digest).toMatch(/^[0-9a-f]{64}$/);
      await admin.setSecret({ scope: workspace, name: 'EMPTY', value: new Uint8Array(0) });
      const big = randomBytes(64 * 1024);
      await admin.setSecret({ scope: workspace, name: 'BIG', value: Buffer.from(big) });

      const resolved = await resolve('shop', ['DB_PASSWORD', 'EMPTY', 'BIG']);
      expect(resolved.secrets.map((s) => [s.name, s.version, s.scope?.kind])).toEqual([
        ['DB_PASSWORD', 1, SecretScopeKind.APP],
        ['EMPTY', 1, SecretScopeKind.WORKSPACE],
        ['BIG', 1, SecretScopeKind.WORKSPACE],
      ]);
      expect(Buffer.from(resolved.secrets[0]?.value ?? []).equals(value)).toBe(true);
      expect(resolved.secrets[1]?.value).toHaveLength(0);
      expect(Buffer.from(resolved.secrets[2]?.value ?? []).equals(big)).toBe(true);

      const listed = await admin.listSecrets({});
      expect(listed.secrets.map((s) => `${s.scope?.app ?? ''}/${s.name}`)).toEqual(['/BIG', '/EMPTY', 'shop/DB_PASSWORD']);
      expect(toJsonString(ListSecretsResponseSchema, listed)).not.toContain(value.toString('hex'));
      const stored = await sql<{ blob: Buffer }>`SELECT blob FROM secret_versions WHERE name = 'DB_PASSWORD'`.execute(harness.domain.db);
      expect(stored.rows[0]?.blob.includes(value)).toBe(false);
    });

    it('gives a digest that follows the value, not the version', async () => {
      const admin = harness.client();
      const a = await admin.setSecret({ scope: app('digest'), name: 'D', value: bytes('same') });
      const b = await admin.setSecret({ scope: app('digest'), name: 'D', value: bytes('same') });
      const c = await admin.setSecret({ scope: app('digest'), name: 'D', value: bytes('other') });
      expect(b.secret?.digest).toBe(a.secret?.digest);
      expect(c.secret?.digest).not.toBe(a.secret?.digest);
      const versions = await admin.listSecretVersions({ scope: app('digest'), name: 'D' });
      expect(versions.versions.map((v) => v.digest)).toEqual([c.secret?.digest, a.secret?.digest, a.secret?.digest]);
    });

    it('gives secrets holding the same value different digests, also those written before digests keyed in the name', async () => {
      const admin = harness.client();
      const same = bytes('shared-value');
      const digests = await Promise.all(
        [
          { scope: workspace, name: 'SAME_A' },
          { scope: workspace, name: 'SAME_B' },
          { scope: app('same'), name: 'SAME_A' },
        ].map(async (where) => (await admin.setSecret({ ...where, value: same })).secret?.digest),
      );
      expect(new Set(digests).size).toBe(3);

      // A version as an older service wrote it: the digest of the value alone, not yet bound.
      const valueOnly = createHmac('sha256', 'legacy').update(same).digest('hex');
      await sql`UPDATE secret_versions SET digest = ${valueOnly}, digest_subject_bound = false WHERE name IN ('SAME_A', 'SAME_B')`.execute(harness.domain.db);
      await harness.reopen();
      const listed = (await harness.client().listSecrets({})).secrets.filter((s) => s.name.startsWith('SAME_'));
      expect(listed.map((s) => s.digest).sort()).toEqual([...digests].sort());
      const unbound = await sql<{ n: number }>`SELECT count(*)::int AS n FROM secret_versions WHERE NOT digest_subject_bound`.execute(harness.domain.db);
      expect(unbound.rows[0]?.n).toBe(0);
    });

    it('keeps the newest N versions and resolves the newest', async () => {
      const admin = harness.client();
      for (let i = 1; i <= 5; i++) {
        const res = await admin.setSecret({ scope: app('keep'), name: 'TOKEN', value: bytes(`token-${i}`) });
        expect(res.secret).toMatchObject({ latestVersion: i, versionCount: Math.min(i, 3) });
      }
      const versions = await admin.listSecretVersions({ scope: app('keep'), name: 'TOKEN' });
      expect(versions.versions.map((v) => v.version)).toEqual([5, 4, 3]);
      expect(versions.versions.every((v) => v.kekId === harness.domain.keys.current().id && v.createdBy.endsWith('/user/admin'))).toBe(true);
      const rows = await sql<{ version: number }>`SELECT version FROM secret_versions WHERE app = 'keep' ORDER BY version`.execute(harness.domain.db);
      expect(rows.rows.map((r) => r.version)).toEqual([3, 4, 5]);
      const resolved = await resolve('keep', ['TOKEN']);
      expect(Buffer.from(resolved.secrets[0]?.value ?? []).toString()).toBe('token-5');
    });

    it('falls back from app to workspace scope and lists every missing name', async () => {
      const admin = harness.client();
      await admin.setSecret({ scope: workspace, name: 'SHARED', value: bytes('ws-shared') });
      await admin.setSecret({ scope: workspace, name: 'OVERRIDDEN', value: bytes('ws-overridden') });
      await admin.setSecret({ scope: app('fall'), name: 'OVERRIDDEN', value: bytes('app-overridden') });
      await admin.setSecret({ scope: app('elsewhere'), name: 'ONLY_ELSEWHERE', value: bytes('elsewhere') });

      const forFall = await resolve('fall', ['SHARED', 'OVERRIDDEN']);
      expect(forFall.secrets.map((s) => [s.name, Buffer.from(s.value).toString(), s.scope?.kind])).toEqual([
        ['SHARED', 'ws-shared', SecretScopeKind.WORKSPACE],
        ['OVERRIDDEN', 'app-overridden', SecretScopeKind.APP],
      ]);
      const forOther = await resolve('other', ['OVERRIDDEN']);
      expect(Buffer.from(forOther.secrets[0]?.value ?? []).toString()).toBe('ws-overridden');

      const missing = await failure(resolve('fall', ['SHARED', 'ONLY_ELSEWHERE', 'NOWHERE']));
      expect(missing.code).toBe(Code.NotFound);
      expect(missing.rawMessage).toMatch(/no secret named ONLY_ELSEWHERE, NOWHERE exists in app fall or the workspace/);
      const audit = await harness.client().listAuditEvents({ name: 'NOWHERE' });
      expect(audit.events.at(-1)).toMatchObject({ reason: 'not-found: ONLY_ELSEWHERE, NOWHERE', instanceId: 'i-1' });
    });

    it('deletes every version, keeps the audit, and never reuses a version number', async () => {
      const admin = harness.client();
      await admin.setSecret({ scope: app('del'), name: 'GONE', value: bytes('v1') });
      await admin.setSecret({ scope: app('del'), name: 'GONE', value: bytes('v2') });
      expect((await admin.deleteSecret({ scope: app('del'), name: 'GONE' })).versionsDeleted).toBe(2);
      expect((await failure(admin.deleteSecret({ scope: app('del'), name: 'GONE' }))).code).toBe(Code.NotFound);
      expect((await failure(admin.listSecretVersions({ scope: app('del'), name: 'GONE' }))).code).toBe(Code.NotFound);
      expect((await failure(resolve('del', ['GONE']))).code).toBe(Code.NotFound);
      const again = await admin.setSecret({ scope: app('del'), name: 'GONE', value: bytes('v3') });
      expect(again.secret?.latestVersion).toBe(3);
      const events = await admin.listAuditEvents({ name: 'GONE' });
      expect(events.events.map((e) => e.action)).toEqual([1, 1, 2, 3, 1]);
      expect(events.events[2]?.secrets.map((s) => s.version)).toEqual([1, 2]);
    });

    describe('stored blobs that were moved or damaged fail to decrypt, releasing nothing', () => {
      const db = () => harness.domain.db;

      async function blobOf(scopeApp: string, name: string, version?: number): Promise<Buffer> {
        const rows = await sql<{ blob: Buffer }>`
          SELECT blob FROM secret_versions WHERE app = ${scopeApp} AND name = ${name}
          ORDER BY version DESC`.execute(db());
        const row =
          version === undefined
            ? rows.rows[0]
            : (await sql<{ blob: Buffer }>`SELECT blob FROM secret_versions WHERE app = ${scopeApp} AND name = ${name} AND version = ${version}`.execute(db()))
                .rows[0];
        if (row === undefined) throw new Error(`no blob for ${scopeApp}/${name}`);
        return row.blob;
      }

      async function putBlob(scopeApp: string, name: string, version: number, blob: Buffer): Promise<void> {
        await sql`UPDATE secret_versions SET blob = ${blob} WHERE app = ${scopeApp} AND name = ${name} AND version = ${version}`.execute(db());
      }

      async function expectUndecryptable(appName: string, names: string[], message: RegExp): Promise<void> {
        const err = await failure(resolve(appName, names));
        expect(err.code).toBe(Code.DataLoss);
        expect(err.rawMessage).toMatch(message);
        expect(err.rawMessage).toMatch(/nothing was released/);
      }

      it('a blob swapped between two rows, two scopes or two versions', async () => {
        const admin = harness.client();
        await admin.setSecret({ scope: app('swap'), name: 'A', value: bytes('value-a') });
        await admin.setSecret({ scope: app('swap'), name: 'B', value: bytes('value-b') });
        await admin.setSecret({ scope: app('swap'), name: 'V', value: bytes('value-v1') });
        await admin.setSecret({ scope: app('swap'), name: 'V', value: bytes('value-v2') });
        await admin.setSecret({ scope: workspace, name: 'SWAP_WS', value: bytes('value-ws') });
        await admin.setSecret({ scope: app('swap'), name: 'SWAP_WS', value: bytes('value-app') });
        const [a, b, v1, v2, ws, appBlob] = [
          await blobOf('swap', 'A'),
          await blobOf('swap', 'B'),
          await blobOf('swap', 'V', 1),
          await blobOf('swap', 'V', 2),
          await blobOf('', 'SWAP_WS'),
          await blobOf('swap', 'SWAP_WS'),
        ];

        await putBlob('swap', 'A', 1, b);
        await putBlob('swap', 'B', 1, a);
        // B would decrypt fine on its own; the failing A aborts the whole release.
        await expectUndecryptable('swap', ['B', 'A'], /app swap B v1 cannot be decrypted.*different scope, name or version/);
        await putBlob('swap', 'A', 1, a);
        await putBlob('swap', 'B', 1, b);

        await putBlob('swap', 'V', 2, v1);
        await expectUndecryptable('swap', ['V'], /app swap V v2 .*different scope, name or version/);
        await putBlob('swap', 'V', 2, v2);

        await putBlob('swap', 'SWAP_WS', 1, ws);
        await expectUndecryptable('swap', ['SWAP_WS'], /app swap SWAP_WS v1 .*different scope, name or version/);
        await putBlob('swap', 'SWAP_WS', 1, appBlob);

        const healthy = await resolve('swap', ['A', 'B', 'V', 'SWAP_WS']);
        expect(healthy.secrets.map((s) => Buffer.from(s.value).toString())).toEqual(['value-a', 'value-b', 'value-v2', 'value-app']);
        const denied = await harness.client().listAuditEvents({ name: 'SWAP_WS', outcome: 2 });
        expect(denied.events.at(-1)?.reason).toBe('undecryptable: app swap SWAP_WS v1 (wrong-binding)');
      });

      it('a flipped bit in any field', async () => {
        await harness.client().setSecret({ scope: app('flip'), name: 'F', value: bytes('flip-me-please') });
        const original = await blobOf('flip', 'F');
        const kekIdLength = harness.domain.keys.current().id.length;
        const header = 4 + kekIdLength;
        // One offset inside each field: magic, version, id length, id, wrap nonce, wrapped key,
        // wrap tag, binding check, value nonce, ciphertext, value tag (see blob-format.ts).
        const offsets = [0, 2, 3, 4, header, header + 12, header + 44, header + 60, header + 76, header + 88, original.length - 1];
        expect(original.length).toBe(MIN_BLOB_BYTES - 1 + kekIdLength + 'flip-me-please'.length);
        for (const offset of offsets) {
          const flipped = Buffer.from(original);
          flipped[offset] = (flipped[offset] ?? 0) ^ 0x01;
          await putBlob('flip', 'F', 1, flipped);
          await expectUndecryptable(
            'flip',
            ['F'],
            /app flip F v1 cannot be decrypted, so nothing was released: (corrupt blob|authentication failed|unknown KEK id|blob was written for a different)/,
          );
        }
        await putBlob('flip', 'F', 1, original);
        expect(Buffer.from((await resolve('flip', ['F'])).secrets[0]?.value ?? []).toString()).toBe('flip-me-please');
      });
    });
  });
}

describe('wrong master keys', () => {
  it('a key with the right id but other bytes fails every read with an authentication error', async () => {
    const real = createSecretKey(randomBytes(32));
    const kek: LoadedKek = { id: kekIdFor(1, real), key: real, createdAt: new Date() };
    let served: LoadedKek = kek;
    const source: KekSource = {
      description: 'test source',
      list: () => Promise.resolve([served]),
      create: () => Promise.reject(new KekError('exists', 'no new keys here')),
      explainMissing: (id) => Promise.resolve(`${id} is not in the test source`),
    };
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-secrets-wrongkek-'));
    const harness = await SecretsHarness.open({ database: join(dir, 'db'), kekSource: source });
    try {
      await harness.client().setSecret({ scope: app('shop'), name: 'K', value: bytes('under the real key') });
      served = { ...kek, key: createSecretKey(randomBytes(32)) };
      // The digest key is sealed under the same key, so the restart already refuses it.
      const refused = await harness.reopen().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(String(refused)).toMatch(/authentication failed: the data key does not verify under master key k1-/);
      served = kek;
      await harness.reopen();
      const grant = harness.grant({ nodeId: 'n1', app: 'shop', secretNames: ['K'] });
      served = { ...kek, key: createSecretKey(randomBytes(32)) };
      await harness.domain.keys.reload();
      const err = await failure(harness.client(NODE).resolveSecrets({ grant }));
      expect(err.code).toBe(Code.DataLoss);
      expect(err.rawMessage).toMatch(/app shop K v1 cannot be decrypted, so nothing was released: authentication failed/);
    } finally {
      served = kek;
      await harness.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a replaced key file stops start-up, saying the key differs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-secrets-replaced-'));
    const harness = await SecretsHarness.open({ database: join(dir, 'db') });
    try {
      await harness.client().setSecret({ scope: workspace, name: 'X', value: bytes('x') });
      await writeFile(harness.keyFile, randomBytes(32), { mode: 0o600 });
      const refused = await harness.reopen().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(KekError);
      expect(String(refused)).toMatch(
        /master key k1-[0-9a-f]{8}, but .*master\.key holds a different key \(k1-[0-9a-f]{8}\)\. Restore the original key file from backup/,
      );
    } finally {
      await harness.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('writes are one transaction', () => {
  it('leaves nothing behind when the audit entry cannot be written', async () => {
    const harness = await SecretsHarness.open();
    try {
      const { db, keys } = harness.domain;
      await harness.client().setSecret({ scope: app('tx'), name: 'T', value: bytes('first') });
      const failingAudit = { append: () => Promise.reject(new Error('audit log unavailable')) };
      const budget = { reserve: () => Promise.resolve() };
      const digestKey = { digest: () => '00' } as unknown as ConstructorParameters<typeof SecretStore>[0]['digestKey'];
      const store = new SecretStore({ db, keys, budget, digestKey, audit: failingAudit, inFlight: new InFlightWrites(), keepVersions: 1 });
      const scope = { kind: 'app', app: 'tx' } as const;
      await expect(store.set({ scope, name: 'T', value: bytes('second'), principal: 'spiffe://shellwego/user/admin' })).rejects.toThrow(
        /audit log unavailable/,
      );
      await expect(store.set({ scope, name: 'NEW', value: bytes('new'), principal: 'spiffe://shellwego/user/admin' })).rejects.toThrow(/audit log unavailable/);
      await expect(store.delete(scope, 'T', 'spiffe://shellwego/user/admin')).rejects.toThrow(/audit log unavailable/);
      const rows = await sql<{ name: string; version: number }>`SELECT name, version FROM secret_versions WHERE app = 'tx'`.execute(db);
      expect(rows.rows).toEqual([{ name: 'T', version: 1 }]);
      const counters = await sql<{ name: string; last_version: number }>`SELECT name, last_version FROM secrets WHERE app = 'tx'`.execute(db);
      expect(counters.rows).toEqual([{ name: 'T', last_version: 1 }]);
      expect((await new AuditLog(db).list({ name: 'T' })).events).toHaveLength(1);
      const next = await harness.client().setSecret({ scope: app('tx'), name: 'T', value: bytes('second') });
      expect(next.secret?.latestVersion).toBe(2);
    } finally {
      await harness.close();
    }
  });
});
