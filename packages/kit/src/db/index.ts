// Each service's own database schema over Postgres or embedded PGlite, migrated at open.
export { openDatabase, SCHEMA_NAME } from './open-database.js';
export type { Database, OpenDatabaseOptions } from './open-database.js';
export { MigrationError, migrateToLatest } from './migrate.js';
export { isUniqueViolation, sqlState, UNIQUE_VIOLATION } from './errors.js';
export type { Migration } from 'kysely/migration';
