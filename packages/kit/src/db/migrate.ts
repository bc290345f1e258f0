// Runs a service's in-code migrations with kysely's Migrator, inside the service's schema.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { Migrator } from 'kysely/migration';

export class MigrationError extends Error {
  /** The migration that failed, when the failure was in one. */
  readonly migrationName: string | undefined;

  constructor(message: string, migrationName: string | undefined, cause: unknown) {
    super(message, { cause });
    this.name = 'MigrationError';
    this.migrationName = migrationName;
  }
}

// Plain code-unit order: "0010_x" after "0009_y" whatever the locale.
const lexical = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Applies every pending migration; returns the names applied. Throws MigrationError. */
export async function migrateToLatest<DB>(db: Kysely<DB>, schema: string, migrations: Readonly<Record<string, Migration>>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    migrationTableSchema: schema,
    nameComparator: lexical,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error === undefined) {
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }
  const reason = error instanceof Error ? error.message : String(error);
  const failed = results?.find((r) => r.status === 'Error')?.migrationName;
  if (failed !== undefined) {
    throw new MigrationError(`migration "${failed}" failed in schema "${schema}": ${reason}`, failed, error);
  }
  throw new MigrationError(`migrating schema "${schema}" failed: ${reason}`, undefined, error);
}
