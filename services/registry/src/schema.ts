import type { ColumnType } from 'kysely';
import type { RuntimeConfig } from './oci/image-config.js';

/** One stored image: a manifest whose config and layers are all in the blob store. */
export interface ImagesTable {
  digest: string;
  media_type: string;
  manifest_size: ColumnType<bigint, number, never>;
  config_digest: string;
  /** os/arch[/variant]. */
  platform: string;
  /** The multi-platform index it was picked from, so name@<index digest> resolves too. */
  index_digest: string | null;
  /** Where it came from: "import oci", "import docker" or "pull <reference>". */
  source: string;
  created_at: ColumnType<Date, never, never>;
}

/** Image configs by digest (shared by images with the same config). */
export interface ConfigsTable {
  digest: string;
  size_bytes: ColumnType<bigint, number, never>;
  runtime: ColumnType<RuntimeConfig, string, never>;
  diff_ids: ColumnType<string[], string, never>;
  /** RFC 3339 creation time from the config, '' when it has none. */
  image_created: string;
}

/** Layer blobs any image uses. */
export interface LayersTable {
  digest: string;
  size_bytes: ColumnType<bigint, number, never>;
}

/** Which layers an image references, bottom first. */
export interface ImageLayersTable {
  image_digest: string;
  position: number;
  layer_digest: string;
  media_type: string;
}

/** name:tag -> image. */
export interface TagsTable {
  repository: string;
  tag: string;
  image_digest: string;
  updated_at: ColumnType<Date, never, Date>;
}

/** The cached ext4 root filesystem of an image. */
export interface RootfsBuildsTable {
  image_digest: string;
  sha256: string;
  size_bytes: ColumnType<bigint, number, number>;
  built_at: ColumnType<Date, never, Date>;
}

export interface RegistryDatabase {
  images: ImagesTable;
  configs: ConfigsTable;
  layers: LayersTable;
  image_layers: ImageLayersTable;
  tags: TagsTable;
  rootfs_builds: RootfsBuildsTable;
}
