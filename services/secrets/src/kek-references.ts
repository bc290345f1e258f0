import type { Kysely } from 'kysely';
import type { SecretsDatabase } from './schema.js';

export interface KekReferences {
  /** Secret versions whose data key each master key wraps. */
  readonly secretVersions: ReadonlyMap<string, bigint>;
  /** The master key wrapping the digest key, once one exists. */
  readonly digestKey: string | undefined;
}

/** Which master keys the stored data depends on. */
export async function kekReferences(db: Kysely<SecretsDatabase>): Promise<KekReferences> {
  const counts = await db
    .selectFrom('secret_versions')
    .select(['kek_id', (eb) => eb.fn.countAll<bigint>().as('count')])
    .groupBy('kek_id')
    .execute();
  const digest = await db.selectFrom('digest_key').select('kek_id').where('id', '=', 1).executeTakeFirst();
  return { secretVersions: new Map(counts.map((row) => [row.kek_id, row.count])), digestKey: digest?.kek_id };
}

/** Every master key id the database references: what start-up must be able to load. */
export function referencedKekIds(references: KekReferences): string[] {
  const ids = new Set(references.secretVersions.keys());
  if (references.digestKey !== undefined) ids.add(references.digestKey);
  return [...ids];
}
