import { randomBytes } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Code, ConnectError } from '@connectrpc/connect';
import { AuditAction, AuditOutcome, SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { Principal } from '@shellwego/kit/pki';
import { createPostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretsHarness } from '../test/support/secrets-harness.js';

const NODE: Principal = { kind: 'node', id: 'n1' };
/** Secrets written before the rotation; the re-wrap moves them in batches of 7. */
const SECRETS = 40;
const shop = { kind: SecretScopeKind.APP, app: 'shop' };

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('expected the call to fail');
}

const postgresSkip = await postgresUnavailable();
if (postgresSkip !== undefined) console.warn(`skipping the Postgres rotation test: ${postgresSkip}`);

const temps: string[] = [];
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function pgliteDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shellwego-rotation-'));
  temps.push(dir);
  return join(dir, 'db');
}

/** Every secret's expected newest value, kept by the test as it writes. */
class Expected {
  readonly values = new Map<string, string>();
  names(): string[] {
    return [...this.values.keys()];
  }
}

async function checkAll(harness: SecretsHarness, expected: Expected, names = expected.names()): Promise<number> {
  // Snapshot first: a writer may move a value on while the call is in flight.
  const before = new Map(names.map((name) => [name, expected.values.get(name)]));
  const res = await harness.client(NODE).resolveSecrets({ grant: harness.grant({ nodeId: 'n1', app: 'shop', secretNames: names }) });
  expect(res.secrets.map((s) => s.name)).toEqual(names);
  for (const secret of res.secrets) {
    const got = Buffer.from(secret.value).toString();
    const now = expected.values.get(secret.name);
    // Either the value when the call started or a newer one written meanwhile.
    if (got !== before.get(secret.name)) expect(got).toBe(now);
  }
  return res.secrets.length;
}

const backends = [
  { name: 'PGlite', skip: undefined as string | undefined, open: async () => ({ url: await pgliteDir(), drop: async () => undefined }) },
  { name: 'Postgres', skip: postgresSkip, open: () => createPostgresTestDatabase() },
];

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`master key rotation on ${backend.name}`, () => {
    // Reads and writes run for as long as the re-wrap takes, which a loaded machine stretches.
    it('loses nothing under concurrent reads and writes, and old keys stay loadable until unreferenced', { timeout: 90_000 }, async () => {
      const database = await backend.open();
      const harness = await SecretsHarness.open({ database: database.url, rewrapBatchSize: 7, keepVersions: 2 });
      try {
        const admin = harness.client();
        const expected = new Expected();
        for (let i = 0; i < SECRETS; i++) {
          const value = `v0-${i}-${randomBytes(4).toString('hex')}`;
          await admin.setSecret({ scope: shop, name: `S${i}`, value: Buffer.from(value) });
          expected.values.set(`S${i}`, value);
        }
        const oldKek = harness.domain.keys.current().id;
        expect(await checkAll(harness, expected)).toBe(SECRETS);

        let stop = false;
        let reads = 0;
        let writes = 0;
        const readers = Array.from({ length: 2 }, async () => {
          while (!stop) {
            const names = expected.names().filter(() => Math.random() < 0.3);
            if (names.length > 0) reads += await checkAll(harness, expected, names);
            // In-memory transport and PGlite never leave the promise chain: let timers run.
            await nextTurn();
          }
        });
        const writer = (async () => {
          for (let round = 1; !stop; round++) {
            const name = `S${Math.floor(Math.random() * SECRETS)}`;
            const value = `v${round}-${randomBytes(4).toString('hex')}`;
            await admin.setSecret({ scope: shop, name, value: Buffer.from(value) });
            expected.values.set(name, value);
            writes++;
            await nextTurn();
          }
        })();

        const { kekId } = await admin.rotateMasterKey({});
        expect(kekId).not.toBe(oldKek);
        expect(harness.domain.keys.current().id).toBe(kekId);
        const during = await admin.getMasterKeyStatus({});
        expect(during.currentKekId).toBe(kekId);
        // New writes use the new key at once.
        const fresh = await admin.setSecret({ scope: shop, name: 'FRESH', value: Buffer.from('fresh') });
        expect((await admin.listSecretVersions({ scope: shop, name: 'FRESH' })).versions[0]?.kekId).toBe(kekId);
        expected.values.set('FRESH', 'fresh');
        expect(fresh.secret?.latestVersion).toBe(1);

        await harness.domain.rotation.idle();
        stop = true;
        await Promise.all([...readers, writer]);
        expect(reads).toBeGreaterThan(0);
        expect(writes).toBeGreaterThan(0);

        const after = await admin.getMasterKeyStatus({});
        expect(after.rewrapRunning).toBe(false);
        expect(after.rewrapDone).toBe(after.rewrapTotal);
        // The digest key and the versions still under the old key once in-flight writes settled:
        // how many depends on timing, as writes under the new key prune old versions (keepVersions 2).
        expect(after.rewrapTotal).toBeGreaterThan(1n);
        expect(after.versions.map((v) => v.kekId)).toEqual([kekId]);
        const stored = await sql<{ kek_id: string; n: bigint }>`SELECT kek_id, count(*) AS n FROM secret_versions GROUP BY kek_id`.execute(harness.domain.db);
        expect(stored.rows.map((r) => r.kek_id)).toEqual([kekId]);
        expect(after.versions[0]?.wrappedCount).toBe(stored.rows[0]?.n);
        const digest = await sql<{ kek_id: string }>`SELECT kek_id FROM digest_key`.execute(harness.domain.db);
        expect(digest.rows[0]?.kek_id).toBe(kekId);
        expect(await checkAll(harness, expected)).toBe(SECRETS + 1);

        const rotations = await admin.listAuditEvents({ action: AuditAction.ROTATE });
        expect(rotations.events).toHaveLength(1);
        expect(rotations.events[0]).toMatchObject({
          outcome: AuditOutcome.GRANTED,
          reason: `new master key ${kekId}`,
          principal: 'spiffe://shellwego/user/admin',
        });

        // Nothing references the first key any more: a restart without its file works.
        await rm(harness.keyFile);
        await harness.reopen();
        expect(await checkAll(harness, expected)).toBe(SECRETS + 1);
        // The digest key was re-wrapped, not replaced: the same value still gives the same digest.
        const again = await harness.client().setSecret({ scope: shop, name: 'FRESH', value: Buffer.from('fresh') });
        expect(again.secret?.digest).toBe(fresh.secret?.digest);
        await expect(access(join(harness.keyFile, '..', 'master-k2.key'))).resolves.toBeUndefined();
      } finally {
        await harness.close();
        await database.drop();
      }
    });
  });
}

describe('master key rotation', () => {
  it('refuses a second rotation while a re-wrap runs, and audits the refusal', async () => {
    const harness = await SecretsHarness.open({ rewrapBatchSize: 1 });
    try {
      const admin = harness.client();
      for (let i = 0; i < 50; i++) await admin.setSecret({ scope: shop, name: `R${i}`, value: Buffer.from(`r${i}`) });
      const first = await admin.rotateMasterKey({});
      const refused = await failure(admin.rotateMasterKey({}));
      expect(refused.code).toBe(Code.FailedPrecondition);
      expect(refused.rawMessage).toMatch(
        /a master key rotation started at .* by spiffe:\/\/shellwego\/user\/admin is still re-wrapping data keys \(\d+ of \d+ done\); wait for it/,
      );
      const running = await admin.getMasterKeyStatus({});
      expect(running.rewrapRunning).toBe(true);
      expect(running.versions.map((v) => v.kekId)).toContain(first.kekId);
      await harness.domain.rotation.idle();
      const second = await admin.rotateMasterKey({});
      expect(second.kekId).toMatch(/^k3-/);
      await harness.domain.rotation.idle();
      const events = await admin.listAuditEvents({ action: AuditAction.ROTATE });
      expect(events.events.map((e) => e.outcome)).toEqual([AuditOutcome.GRANTED, AuditOutcome.DENIED, AuditOutcome.GRANTED]);
      expect(events.events[1]?.reason).toMatch(/^rotation-running: /);
    } finally {
      await harness.close();
    }
  });

  it('resumes an interrupted re-wrap at the next start', async () => {
    const harness = await SecretsHarness.open({ database: await pgliteDir(), rewrapBatchSize: 1 });
    try {
      const admin = harness.client();
      for (let i = 0; i < 15; i++) await admin.setSecret({ scope: shop, name: `I${i}`, value: Buffer.from(`i${i}`) });
      const { kekId } = await admin.rotateMasterKey({});
      await harness.reopen();
      const resumed = harness.domain.rotation;
      await resumed.idle();
      const status = await harness.client().getMasterKeyStatus({});
      expect(status).toMatchObject({ currentKekId: kekId, rewrapRunning: false });
      expect(status.versions.map((v) => [v.kekId, v.wrappedCount])).toEqual([[kekId, 15n]]);
      expect(harness.logLines.some((line) => line.includes('resuming an interrupted master key re-wrap'))).toBe(true);
      const names = Array.from({ length: 15 }, (_, i) => `I${i}`);
      const res = await harness.client(NODE).resolveSecrets({ grant: harness.grant({ nodeId: 'n1', app: 'shop', secretNames: names }) });
      expect(res.secrets.map((s) => Buffer.from(s.value).toString())).toEqual(names.map((n) => n.toLowerCase()));
    } finally {
      await harness.close();
    }
  });

  it('stops writes at the encryption limit of a key, with a message saying to rotate', async () => {
    // One encryption goes to the digest key at first start.
    const harness = await SecretsHarness.open({ encryptionLimit: 4 });
    try {
      const admin = harness.client();
      for (let i = 0; i < 3; i++) await admin.setSecret({ scope: shop, name: `L${i}`, value: Buffer.from('x') });
      const err = await failure(admin.setSecret({ scope: shop, name: 'L3', value: Buffer.from('x') }));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toMatch(/has reached its limit of 4 encryptions; rotate the master key \(shellwego secret rotate-key\)/);
      const status = await admin.getMasterKeyStatus({});
      expect(status.versions[0]?.encryptions).toBe(4n);
      await admin.rotateMasterKey({});
      await harness.domain.rotation.idle();
      // The re-wrap spent 4 of the new key's 4 (3 versions and the digest key).
      const blocked = await failure(admin.setSecret({ scope: shop, name: 'L3', value: Buffer.from('x') }));
      expect(blocked.code).toBe(Code.FailedPrecondition);
      expect((await admin.getMasterKeyStatus({})).versions.map((v) => v.encryptions)).toEqual([4n]);
    } finally {
      await harness.close();
    }
  });
});
