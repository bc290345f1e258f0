import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { EncryptionBudget } from './crypto/index.js';
import { DEFAULT_KEK_ENCRYPTION_LIMIT, EncryptionLimitError } from './crypto/index.js';
import type { SecretsDatabase } from './schema.js';

/**
 * Encryption counts per master key in the `keks` table, shared by every
 * replica. Each reservation is one atomic UPDATE that refuses to pass the
 * limit, so replicas can never jointly overshoot it. Wrap it in a
 * ChunkedEncryptionBudget to spend one round trip per many writes.
 */
export class DbEncryptionBudget implements EncryptionBudget {
  readonly #db: Kysely<SecretsDatabase>;
  readonly limit: number;

  constructor(db: Kysely<SecretsDatabase>, limit = DEFAULT_KEK_ENCRYPTION_LIMIT) {
    this.#db = db;
    this.limit = limit;
  }

  async reserve(kekId: string, count: number): Promise<void> {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`encryption count must be a positive integer, got ${count}`);
    // Second round only after creating the row of a key this database had not seen yet.
    for (let attempt = 0; attempt < 2; attempt++) {
      const reserved = await sql<{ encryptions: bigint }>`
        UPDATE keks SET encryptions = encryptions + ${count}
        WHERE id = ${kekId} AND encryptions + ${count} <= ${this.limit}
        RETURNING encryptions`.execute(this.#db);
      if (reserved.rows.length === 1) return;
      if (!(await recordKek(this.#db, kekId))) break;
    }
    throw new EncryptionLimitError(kekId, this.limit);
  }
}

/** Records a master key version in `keks`; returns false when it was already there. */
export async function recordKek(db: Kysely<SecretsDatabase>, kekId: string): Promise<boolean> {
  const result = await sql`INSERT INTO keks (id) VALUES (${kekId}) ON CONFLICT (id) DO NOTHING`.execute(db);
  return result.numAffectedRows === 1n;
}

export interface KekUsage {
  readonly createdAt: Date;
  readonly encryptions: bigint;
}

/** Creation time and encryptions so far of every recorded master key version. */
export async function kekUsage(db: Kysely<SecretsDatabase>): Promise<Map<string, KekUsage>> {
  const rows = await db.selectFrom('keks').select(['id', 'created_at', 'encryptions']).execute();
  return new Map(rows.map((row) => [row.id, { createdAt: row.created_at, encryptions: row.encryptions }]));
}
