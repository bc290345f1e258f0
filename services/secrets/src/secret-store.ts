import type { ConnectError } from '@connectrpc/connect';
import { notFound } from '@shellwego/kit/errors';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { AuditLog } from './audit-log.js';
import type { DigestKey, EncryptionBudget } from './crypto/index.js';
import { sealSecret } from './crypto/index.js';
import type { InFlightWrites } from './in-flight-writes.js';
import type { KeyRingHolder } from './key-ring-holder.js';
import { ReservedEncryptions } from './reserved-encryptions.js';
import type { SecretsDatabase } from './schema.js';
import type { ScopeColumns } from './scope-columns.js';
import { scopeColumns, scopeFromColumns } from './scope-columns.js';
import type { SecretScopeRef } from './validation/index.js';
import { describeSecretScope } from './validation/index.js';

/** Metadata of a secret's newest version; never its value. */
export interface SecretInfoRecord {
  readonly scope: SecretScopeRef;
  readonly name: string;
  readonly latestVersion: number;
  readonly updatedAt: Date;
  readonly updatedBy: string;
  readonly digest: string;
  readonly versionCount: number;
}

export interface SecretVersionRecord {
  readonly version: number;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly digest: string;
  readonly kekId: string;
}

/** The sealed newest version of a secret, as the resolve path needs it. */
export interface StoredVersion {
  readonly scope: SecretScopeRef;
  readonly name: string;
  readonly version: number;
  readonly blob: Buffer;
}

export interface SecretWrite {
  readonly scope: SecretScopeRef;
  readonly name: string;
  /** The plaintext; the caller owns it and wipes it afterwards. */
  readonly value: Uint8Array;
  /** The SPIFFE id of whoever sets it. */
  readonly principal: string;
}

export interface SecretStoreOptions {
  readonly db: Kysely<SecretsDatabase>;
  readonly keys: KeyRingHolder;
  readonly budget: EncryptionBudget;
  readonly digestKey: DigestKey;
  readonly audit: Pick<AuditLog, 'append'>;
  /** Shared with key rotation, which waits for writes under the old key. */
  readonly inFlight: InFlightWrites;
  /** Versions kept per secret; older ones go in the same transaction as the write. */
  readonly keepVersions: number;
}

function secretNotFound(scope: SecretScopeRef, name: string): ConnectError {
  return notFound(`secret ${name} does not exist in ${describeSecretScope(scope)}; list secrets with \`shellwego secret list\``);
}

/**
 * Secrets and their versions in the database. Every write is one
 * transaction holding the new version, the retention cleanup and the audit
 * entry: a failure anywhere leaves nothing behind.
 */
export class SecretStore {
  readonly #db: Kysely<SecretsDatabase>;
  readonly #options: SecretStoreOptions;

  constructor(options: SecretStoreOptions) {
    this.#db = options.db;
    this.#options = options;
  }

  /** Stores a new version sealed under the current master key; returns the secret's new metadata. */
  async set(write: SecretWrite): Promise<SecretInfoRecord> {
    const { keys, budget, digestKey, audit, keepVersions, inFlight } = this.#options;
    const kek = keys.current();
    return inFlight.track(kek.id, async () => {
      const reserved = await ReservedEncryptions.take(budget, kek.id, 1);
      const digest = digestKey.digest(write.scope, write.name, write.value);
      const where = scopeColumns(write.scope);
      return this.#db.transaction().execute(async (trx) => {
        // The upsert locks the secret's row, so concurrent writes of one secret get distinct versions.
        const { last_version: version } = await trx
          .insertInto('secrets')
          .values({ ...where, name: write.name, last_version: 1 })
          .onConflict((conflict) => conflict.columns(['scope_kind', 'app', 'name']).doUpdateSet({ last_version: sql<number>`secrets.last_version + 1` }))
          .returning('last_version')
          .executeTakeFirstOrThrow();
        const blob = await sealSecret(write.value, { scope: write.scope, name: write.name, version }, kek, reserved);
        const inserted = await trx
          .insertInto('secret_versions')
          .values({ ...where, name: write.name, version, blob, kek_id: kek.id, digest, digest_subject_bound: true, created_by: write.principal })
          .returning('created_at')
          .executeTakeFirstOrThrow();
        await trx
          .deleteFrom('secret_versions')
          .where('scope_kind', '=', where.scope_kind)
          .where('app', '=', where.app)
          .where('name', '=', write.name)
          .where('version', '<=', version - keepVersions)
          .execute();
        const { count } = await trx
          .selectFrom('secret_versions')
          .select((eb) => eb.fn.countAll<bigint>().as('count'))
          .where('scope_kind', '=', where.scope_kind)
          .where('app', '=', where.app)
          .where('name', '=', write.name)
          .executeTakeFirstOrThrow();
        await audit.append(
          { principal: write.principal, action: 'set', scope: write.scope, secrets: [{ name: write.name, version }], outcome: 'granted' },
          trx,
        );
        return {
          scope: write.scope,
          name: write.name,
          latestVersion: version,
          updatedAt: inserted.created_at,
          updatedBy: write.principal,
          digest,
          versionCount: Number(count),
        };
      });
    });
  }

  /** Every secret (or those of one scope), workspace first, then by app and name. */
  async list(scope?: SecretScopeRef): Promise<SecretInfoRecord[]> {
    let query = this.#db
      .selectFrom('secrets as s')
      .innerJoin('secret_versions as v', (join) =>
        join.onRef('v.scope_kind', '=', 's.scope_kind').onRef('v.app', '=', 's.app').onRef('v.name', '=', 's.name').onRef('v.version', '=', 's.last_version'),
      )
      .select(['s.scope_kind', 's.app', 's.name', 's.last_version', 'v.created_at', 'v.created_by', 'v.digest'])
      .select(
        sql<bigint>`(SELECT count(*) FROM secret_versions c WHERE c.scope_kind = s.scope_kind AND c.app = s.app AND c.name = s.name)`.as('version_count'),
      );
    if (scope !== undefined) {
      const where = scopeColumns(scope);
      query = query.where('s.scope_kind', '=', where.scope_kind).where('s.app', '=', where.app);
    }
    // Byte order on both Postgres and PGlite, whatever the database's collation.
    const rows = await query.orderBy(sql`s.app COLLATE "C"`).orderBy(sql`s.name COLLATE "C"`).execute();
    return rows.map((row) => ({
      scope: scopeFromColumns(row),
      name: row.name,
      latestVersion: row.last_version,
      updatedAt: row.created_at,
      updatedBy: row.created_by,
      digest: row.digest,
      versionCount: Number(row.version_count),
    }));
  }

  /** The names of a scope's secrets in byte order: nothing about their values or versions. */
  async names(scope: SecretScopeRef): Promise<string[]> {
    const where = scopeColumns(scope);
    // Joined like list(): a deleted secret keeps no version, and is not listed.
    const rows = await this.#db
      .selectFrom('secrets as s')
      .innerJoin('secret_versions as v', (join) =>
        join.onRef('v.scope_kind', '=', 's.scope_kind').onRef('v.app', '=', 's.app').onRef('v.name', '=', 's.name').onRef('v.version', '=', 's.last_version'),
      )
      .select('s.name')
      .where('s.scope_kind', '=', where.scope_kind)
      .where('s.app', '=', where.app)
      .orderBy(sql`s.name COLLATE "C"`)
      .execute();
    return rows.map((row) => row.name);
  }

  /** The retained versions of one secret, newest first; NOT_FOUND when it has none. */
  async versions(scope: SecretScopeRef, name: string): Promise<SecretVersionRecord[]> {
    const where = scopeColumns(scope);
    const rows = await this.#db
      .selectFrom('secret_versions')
      .select(['version', 'created_at', 'created_by', 'digest', 'kek_id'])
      .where('scope_kind', '=', where.scope_kind)
      .where('app', '=', where.app)
      .where('name', '=', name)
      .orderBy('version', 'desc')
      .execute();
    if (rows.length === 0) throw secretNotFound(scope, name);
    return rows.map((row) => ({ version: row.version, createdAt: row.created_at, createdBy: row.created_by, digest: row.digest, kekId: row.kek_id }));
  }

  /**
   * Deletes every version (the version counter stays, so numbers are never
   * reused); returns how many went. NOT_FOUND when there were none.
   */
  async delete(scope: SecretScopeRef, name: string, principal: string): Promise<number> {
    const where = scopeColumns(scope);
    return this.#db.transaction().execute(async (trx) => {
      const deleted = await trx
        .deleteFrom('secret_versions')
        .where('scope_kind', '=', where.scope_kind)
        .where('app', '=', where.app)
        .where('name', '=', name)
        .returning('version')
        .execute();
      if (deleted.length === 0) throw secretNotFound(scope, name);
      const secrets = deleted.map((row) => ({ name, version: row.version })).sort((a, b) => a.version - b.version);
      await this.#options.audit.append({ principal, action: 'delete', scope, secrets, outcome: 'granted' }, trx);
      return deleted.length;
    });
  }

  /**
   * The newest version of each name for `app`: app scope where it has the
   * name, else workspace scope. Names in neither are absent from the map.
   */
  async latestFor(app: string, names: readonly string[]): Promise<Map<string, StoredVersion>> {
    const found = new Map<string, StoredVersion>();
    if (names.length === 0) return found;
    // The resolve hot path: a plain statement costs a third of the query builder's CPU.
    const { rows } = await sql<ScopeColumns & { name: string; version: number; blob: Buffer }>`
      SELECT s.scope_kind, s.app, s.name, v.version, v.blob
      FROM secrets s
      JOIN secret_versions v ON v.scope_kind = s.scope_kind AND v.app = s.app AND v.name = s.name AND v.version = s.last_version
      WHERE s.name = ANY(${[...names]}::text[]) AND (s.scope_kind = 'workspace' OR (s.scope_kind = 'app' AND s.app = ${app}))`.execute(this.#db);
    for (const row of rows) {
      const existing = found.get(row.name);
      if (existing === undefined || (existing.scope.kind === 'workspace' && row.scope_kind === 'app')) {
        found.set(row.name, { scope: scopeFromColumns(row), name: row.name, version: row.version, blob: row.blob });
      }
    }
    return found;
  }
}
