import type { Kysely } from 'kysely';
import type { DigestKey, EncryptionBudget } from './crypto/index.js';
import { createDigestKey, openDigestKey, openSecret } from './crypto/index.js';
import type { KeyRingHolder } from './key-ring-holder.js';
import type { SecretsDatabase } from './schema.js';
import { scopeFromColumns } from './scope-columns.js';

/**
 * Opens the service's digest key, creating and storing it sealed on first
 * start. Replicas starting together race on the insert; the loser drops its
 * key and opens the winner's.
 */
export async function loadOrCreateDigestKey(db: Kysely<SecretsDatabase>, keys: KeyRingHolder, budget: EncryptionBudget): Promise<DigestKey> {
  const stored = await db.selectFrom('digest_key').select('blob').where('id', '=', 1).executeTakeFirst();
  if (stored !== undefined) return keys.withRing((ring) => openDigestKey(stored.blob, ring));
  const kek = keys.current();
  const created = await createDigestKey(kek, budget);
  const inserted = await db
    .insertInto('digest_key')
    .values({ id: 1, blob: created.sealed, kek_id: kek.id })
    .onConflict((conflict) => conflict.column('id').doNothing())
    .executeTakeFirst();
  if (inserted.numInsertedOrUpdatedRows === 1n) return created.key;
  created.key.wipe();
  const winner = await db.selectFrom('digest_key').select('blob').where('id', '=', 1).executeTakeFirstOrThrow();
  return keys.withRing((ring) => openDigestKey(winner.blob, ring));
}

const LEGACY_DIGEST_BATCH = 100;

/**
 * Recomputes the digests written before they keyed in scope and name (migration 0002), so two
 * secrets that held the same value no longer show the same digest. Opens each such version
 * once, digests it and wipes the plaintext; a row another replica updated first is left alone.
 * Returns how many versions it rebound.
 */
export async function bindLegacyDigests(db: Kysely<SecretsDatabase>, keys: KeyRingHolder, digestKey: DigestKey): Promise<number> {
  let rebound = 0;
  for (;;) {
    const rows = await db
      .selectFrom('secret_versions')
      .select(['scope_kind', 'app', 'name', 'version', 'blob'])
      .where('digest_subject_bound', '=', false)
      .orderBy(['scope_kind', 'app', 'name', 'version'])
      .limit(LEGACY_DIGEST_BATCH)
      .execute();
    if (rows.length === 0) return rebound;
    for (const row of rows) {
      const scope = scopeFromColumns(row);
      const value = await keys.withRing((ring) => openSecret(row.blob, { scope, name: row.name, version: row.version }, ring));
      let digest: string;
      try {
        digest = digestKey.digest(scope, row.name, value.reveal());
      } finally {
        value.wipe();
      }
      await db
        .updateTable('secret_versions')
        .set({ digest, digest_subject_bound: true })
        .where('scope_kind', '=', row.scope_kind)
        .where('app', '=', row.app)
        .where('name', '=', row.name)
        .where('version', '=', row.version)
        .where('digest_subject_bound', '=', false)
        .execute();
      rebound++;
    }
  }
}
