import type { Migration } from '@shellwego/kit/db';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/** The registry schema, one migration per change, applied in name order at start-up. */
export const migrations: Record<string, Migration> = {
  '0001_images': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE configs (
          digest text PRIMARY KEY,
          size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
          runtime jsonb NOT NULL,
          diff_ids jsonb NOT NULL,
          image_created text NOT NULL DEFAULT ''
        )`.execute(db);
      await sql`
        CREATE TABLE layers (
          digest text PRIMARY KEY,
          size_bytes bigint NOT NULL CHECK (size_bytes >= 0)
        )`.execute(db);
      await sql`
        CREATE TABLE images (
          digest text PRIMARY KEY,
          media_type text NOT NULL,
          manifest_size bigint NOT NULL CHECK (manifest_size > 0),
          config_digest text NOT NULL REFERENCES configs (digest),
          platform text NOT NULL,
          index_digest text,
          source text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now()
        )`.execute(db);
      await sql`CREATE INDEX images_index_digest ON images (index_digest) WHERE index_digest IS NOT NULL`.execute(db);
      await sql`CREATE INDEX images_config_digest ON images (config_digest)`.execute(db);
      await sql`
        CREATE TABLE image_layers (
          image_digest text NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
          position integer NOT NULL CHECK (position >= 0),
          layer_digest text NOT NULL REFERENCES layers (digest),
          media_type text NOT NULL,
          PRIMARY KEY (image_digest, position)
        )`.execute(db);
      // Garbage collection asks which layers are still referenced.
      await sql`CREATE INDEX image_layers_layer ON image_layers (layer_digest)`.execute(db);
      await sql`
        CREATE TABLE tags (
          repository text NOT NULL,
          tag text NOT NULL,
          image_digest text NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (repository, tag)
        )`.execute(db);
      await sql`CREATE INDEX tags_image ON tags (image_digest)`.execute(db);
      await sql`
        CREATE TABLE rootfs_builds (
          image_digest text PRIMARY KEY REFERENCES images (digest) ON DELETE CASCADE,
          sha256 text NOT NULL,
          size_bytes bigint NOT NULL CHECK (size_bytes > 0),
          built_at timestamptz NOT NULL DEFAULT now()
        )`.execute(db);
    },
  },
};
