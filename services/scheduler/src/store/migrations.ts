import type { Migration } from '@shellwego/kit/db';
import { type Kysely, sql } from 'kysely';

// Terminal instance states (STOPPED, FAILED, LOST): partial indexes cover only live instances.
const LIVE = sql`state NOT IN (9, 10, 11)`;

/** The scheduler schema, one migration per change, applied in name order at start-up. */
export const migrations: Record<string, Migration> = {
  '0001_scheduler': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('join_token')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'bytea', (c) => c.notNull().unique())
        .addColumn('labels', 'jsonb', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addColumn('used_at', 'timestamptz')
        .addColumn('used_by_node', 'text')
        .execute();
      await db.schema
        .createTable('join_attempt')
        .addColumn('id', 'bigserial', (c) => c.primaryKey())
        .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('token_id', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text')
        .addColumn('hostname', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('node')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('hostname', 'text', (c) => c.notNull())
        .addColumn('join_labels', 'jsonb', (c) => c.notNull())
        .addColumn('reported_labels', 'jsonb', (c) => c.notNull())
        .addColumn('cpu_millis', 'integer', (c) => c.notNull())
        .addColumn('memory_mib', 'integer', (c) => c.notNull())
        .addColumn('max_instances', 'integer', (c) => c.notNull())
        .addColumn('admin_state', 'text', (c) => c.notNull())
        .addColumn('down', 'boolean', (c) => c.notNull())
        .addColumn('reported', 'boolean', (c) => c.notNull())
        .addColumn('last_heartbeat', 'timestamptz')
        .addColumn('driver', 'text', (c) => c.notNull())
        .addColumn('joined_at', 'timestamptz', (c) => c.notNull())
        .addColumn('token_id', 'text')
        .addColumn('cert_serial', 'text')
        .addColumn('cert_expires_at', 'timestamptz')
        .execute();
      await db.schema
        .createTable('app')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('current_version', 'integer', (c) => c.notNull())
        .addColumn('replicas', 'integer', (c) => c.notNull())
        .addColumn('desired', 'jsonb', (c) => c.notNull())
        .addColumn('deployment', 'jsonb', (c) => c.notNull())
        .addColumn('deleted_at', 'timestamptz')
        .execute();
      // No foreign key to app: versions outlive a deleted app, for the record.
      await db.schema
        .createTable('app_version')
        .addColumn('app', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('spec', 'bytea', (c) => c.notNull())
        .addColumn('image_digest', 'text', (c) => c.notNull())
        .addColumn('image_config', 'bytea', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('healthy_at', 'timestamptz')
        .addPrimaryKeyConstraint('app_version_pk', ['app', 'version'])
        .execute();
      await db.schema
        .createTable('instance')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('node_id', 'text')
        .addColumn('state', 'smallint', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('cpu_millis', 'integer', (c) => c.notNull())
        .addColumn('memory_mib', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('healthy_since', 'timestamptz')
        .execute();
      await sql`CREATE INDEX instance_live_app ON instance (app) WHERE ${LIVE}`.execute(db);
      await sql`CREATE INDEX instance_live_node ON instance (node_id) WHERE ${LIVE}`.execute(db);
      await db.schema.createIndex('instance_app').on('instance').columns(['app', 'created_at']).execute();
      await db.schema
        .createTable('event')
        .addColumn('cursor', 'bigserial', (c) => c.primaryKey())
        .addColumn('time', 'timestamptz', (c) => c.notNull())
        .addColumn('app', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('detail', 'bytea', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('event_app').on('event').columns(['app', 'cursor']).execute();
      await db.schema.createIndex('event_node').on('event').columns(['node_id', 'cursor']).execute();
      await db.schema.createIndex('event_instance').on('event').columns(['instance_id', 'cursor']).execute();
      await db.schema
        .createTable('leader')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('since', 'timestamptz', (c) => c.notNull())
        .execute();
    },
  },
  '0002_capacity_ceiling': {
    // An admin's ceiling on what placement counts on a node, set on its join token and copied to the node at join.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('join_token').addColumn('capacity_ceiling', 'jsonb').execute();
      await db.schema.alterTable('node').addColumn('capacity_ceiling', 'jsonb').execute();
    },
  },
  '0003_join_attempt_count': {
    // Refused joins are recorded as one row per source, outcome and token per interval, with their count.
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('join_attempt')
        .addColumn('source', 'text')
        .addColumn('count', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('last_at', 'timestamptz')
        .execute();
    },
  },
  '0004_node_certificates': {
    // Every certificate a node has held, so removal can revoke them all, and the ids of removed nodes, which never come back.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('node_certificate')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('not_after', 'timestamptz', (c) => c.notNull())
        .addColumn('revoked_at', 'timestamptz')
        .execute();
      await db.schema.createIndex('node_certificate_node').on('node_certificate').column('node_id').execute();
      await db.schema.createIndex('node_certificate_revoked').on('node_certificate').column('not_after').where(sql.ref('revoked_at'), 'is not', null).execute();
      await sql`INSERT INTO node_certificate (serial, node_id, not_after)
        SELECT ltrim(lower(cert_serial), '0'), id, cert_expires_at FROM node WHERE cert_serial IS NOT NULL AND cert_expires_at IS NOT NULL`.execute(db);
      await db.schema
        .createTable('removed_node')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('removed_at', 'timestamptz', (c) => c.notNull())
        .addColumn('removed_by', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0005_version_rootfs_sha256': {
    // The rootfs sha256 the registry recorded, pinned in each registry grant; empty for older versions.
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('app_version')
        .addColumn('rootfs_sha256', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
    },
  },
  '0006_instance_address': {
    // The address the node gave each live instance on its network; '' when it has none.
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('instance')
        .addColumn('address', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
    },
  },
  '0007_node_subnet': {
    // The node's instance subnet out of the cluster CIDR; null for nodes that joined before (given at their next session).
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('node').addColumn('subnet', 'text').execute();
      await db.schema.createIndex('node_subnet').on('node').column('subnet').unique().execute();
    },
  },
};
