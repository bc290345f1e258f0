import type { Kysely } from 'kysely';
import type { DigestKey, EncryptionBudget } from './crypto/index.js';
import { createDigestKey, openDigestKey } from './crypto/index.js';
import type { KeyRingHolder } from './key-ring-holder.js';
import type { SecretsDatabase } from './schema.js';

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
