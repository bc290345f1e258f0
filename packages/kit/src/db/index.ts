// Each service's own database schema over Postgres or embedded PGlite, migrated at open.

export type { Migration } from 'kysely/migration';
export { isUniqueViolation, sqlState, UNIQUE_VIOLATION } from './errors.js';
export { MigrationError, migrateToLatest } from './migrate.js';
export type { Database, OpenDatabaseOptions } from './open-database.js';
export { openDatabase, SCHEMA_NAME } from './open-database.js';
export { asSqlBigint, SQL_BIGINT_MAX } from './sql-bigint.js';
