import type { Migration } from '@shellwego/kit/db';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/** The secrets schema, one migration per change, applied in name order at start-up. */
export const migrations: Record<string, Migration> = {
  '0001_secrets': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE secrets (
          scope_kind text NOT NULL CHECK (scope_kind IN ('workspace', 'app')),
          app text NOT NULL,
          name text NOT NULL,
          last_version integer NOT NULL CHECK (last_version >= 1),
          PRIMARY KEY (scope_kind, app, name),
          CHECK ((scope_kind = 'workspace') = (app = ''))
        )`.execute(db);
      await sql`
        CREATE TABLE secret_versions (
          scope_kind text NOT NULL,
          app text NOT NULL,
          name text NOT NULL,
          version integer NOT NULL CHECK (version >= 1),
          blob bytea NOT NULL,
          kek_id text NOT NULL,
          digest text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          created_by text NOT NULL,
          PRIMARY KEY (scope_kind, app, name, version),
          FOREIGN KEY (scope_kind, app, name) REFERENCES secrets (scope_kind, app, name)
        )`.execute(db);
      // Rotation scans by KEK; the start-up check lists the KEK ids in use.
      await sql`CREATE INDEX secret_versions_kek_id ON secret_versions (kek_id)`.execute(db);
      await sql`
        CREATE TABLE keks (
          id text PRIMARY KEY,
          created_at timestamptz NOT NULL DEFAULT now(),
          encryptions bigint NOT NULL DEFAULT 0 CHECK (encryptions >= 0)
        )`.execute(db);
      await sql`
        CREATE TABLE digest_key (
          id smallint PRIMARY KEY CHECK (id = 1),
          blob bytea NOT NULL,
          kek_id text NOT NULL
        )`.execute(db);
      await sql`
        CREATE TABLE audit_events (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          time timestamptz NOT NULL DEFAULT now(),
          principal text NOT NULL,
          action text NOT NULL CHECK (action IN ('set', 'delete', 'resolve', 'rotate')),
          scope_kind text CHECK (scope_kind IN ('workspace', 'app')),
          app text,
          secrets jsonb NOT NULL DEFAULT '[]',
          instance_id text NOT NULL DEFAULT '',
          outcome text NOT NULL CHECK (outcome IN ('granted', 'denied')),
          reason text NOT NULL DEFAULT ''
        )`.execute(db);
      await sql`CREATE INDEX audit_events_instance ON audit_events (instance_id, id) WHERE instance_id <> ''`.execute(db);
      // The audit trail is evidence: the database itself refuses to change or remove it.
      await sql`
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_events is append-only';
        END
        $$`.execute(db);
      await sql`
        CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()`.execute(db);
      await sql`
        CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()`.execute(db);
      await sql`
        CREATE TABLE rotation (
          id smallint PRIMARY KEY CHECK (id = 1),
          holder text,
          lease_until timestamptz,
          target_kek_id text,
          started_at timestamptz,
          started_by text NOT NULL DEFAULT '',
          finished_at timestamptz,
          done bigint NOT NULL DEFAULT 0,
          total bigint NOT NULL DEFAULT 0,
          error text NOT NULL DEFAULT ''
        )`.execute(db);
      await sql`INSERT INTO rotation (id, finished_at) VALUES (1, now())`.execute(db);
    },
  },
  // Digests written before this keyed the value alone; start-up recomputes them with scope and
  // name keyed in (bindLegacyDigests) and sets the flag. New versions are written bound.
  '0002_digest_subject_bound': {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE secret_versions ADD COLUMN digest_subject_bound boolean NOT NULL DEFAULT false`.execute(db);
      await sql`CREATE INDEX secret_versions_legacy_digest ON secret_versions (scope_kind, app, name, version) WHERE NOT digest_subject_bound`.execute(db);
    },
  },
};
