import type { Kysely, Transaction } from 'kysely';
import { formatNameTag, type LocalReference, type TagReference } from './image-reference.js';
import type { RuntimeConfig } from './oci/image-config.js';
import type { ImportedImage, LayerRef } from './oci/imported-image.js';
import { formatPlatform, parsePlatform, platformScore } from './oci/platform.js';
import type { RegistryDatabase } from './schema.js';

/** An image as the service reports it. */
export interface ImageRecord {
  digest: string;
  mediaType: string;
  manifestSize: number;
  configDigest: string;
  config: RuntimeConfig;
  diffIds: string[];
  /** RFC 3339 from the image config, when it has one. */
  imageCreated?: string;
  layers: LayerRef[];
  platform: string;
  indexDigest?: string;
  source: string;
  createdAt: Date;
  /** name:tag, sorted. */
  tags: string[];
  /** "sha256:<hex>" of its ext4 rootfs as first built (at import or pull); absent until built. */
  rootfsSha256?: string;
}

export interface RecordOptions {
  source: string;
  tags: readonly TagReference[];
  indexDigest?: string;
  /** Its built rootfs, recorded with it unless one was recorded already. */
  rootfs?: { sha256: string; sizeBytes: number };
}

type Db = Kysely<RegistryDatabase> | Transaction<RegistryDatabase>;

/** Image metadata in the service database: images, their configs and layers, tags, rootfs builds. */
export class ImageCatalog {
  constructor(private readonly db: Kysely<RegistryDatabase>) {}

  /**
   * Records an image whose blobs are all in the store, and points `tags` at
   * it (moving a tag that named another image). Recording the same image
   * again only adds tags.
   */
  async record(image: ImportedImage, options: RecordOptions): Promise<ImageRecord> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('configs')
        .values({
          digest: image.configDigest,
          size_bytes: image.manifest.config.size,
          runtime: JSON.stringify(image.config),
          diff_ids: JSON.stringify(image.diffIds),
          image_created: image.created ?? '',
        })
        .onConflict((oc) => oc.column('digest').doNothing())
        .execute();
      for (const layer of image.layers) {
        await tx
          .insertInto('layers')
          .values({ digest: layer.digest, size_bytes: layer.size })
          .onConflict((oc) => oc.column('digest').doNothing())
          .execute();
      }
      const inserted = await tx
        .insertInto('images')
        .values({
          digest: image.manifestDigest,
          media_type: image.manifest.mediaType,
          manifest_size: image.manifestSize,
          config_digest: image.configDigest,
          platform: formatPlatform(image.platform),
          index_digest: options.indexDigest ?? image.indexDigest ?? null,
          source: options.source,
        })
        .onConflict((oc) => oc.column('digest').doNothing())
        .returning('digest')
        .execute();
      if (inserted.length > 0 && image.layers.length > 0) {
        await tx
          .insertInto('image_layers')
          .values(image.layers.map((l, position) => ({ image_digest: image.manifestDigest, position, layer_digest: l.digest, media_type: l.mediaType })))
          .execute();
      }
      if (options.rootfs) await insertRootfs(tx, image.manifestDigest, options.rootfs.sha256, options.rootfs.sizeBytes);
      for (const tag of options.tags) {
        await tx
          .insertInto('tags')
          .values({ repository: tag.repository, tag: tag.tag, image_digest: image.manifestDigest })
          .onConflict((oc) => oc.columns(['repository', 'tag']).doUpdateSet({ image_digest: image.manifestDigest, updated_at: new Date() }))
          .execute();
      }
    });
    const stored = await this.get(image.manifestDigest);
    if (!stored) throw new Error(`image ${image.manifestDigest} vanished right after it was recorded`);
    return stored;
  }

  async get(digest: string): Promise<ImageRecord | undefined> {
    return (await this.load(this.db, [digest]))[0];
  }

  /**
   * The image a reference names: a tag, a manifest digest, or the digest of
   * the multi-platform index an image was picked from (then the image for
   * `platform`, or the only one).
   */
  async resolve(ref: LocalReference, platform: string): Promise<ImageRecord | undefined> {
    if (ref.kind === 'tag') {
      const row = await this.db
        .selectFrom('tags')
        .select('image_digest')
        .where('repository', '=', ref.repository)
        .where('tag', '=', ref.tag)
        .executeTakeFirst();
      return row ? this.get(row.image_digest) : undefined;
    }
    const direct = await this.get(ref.digest);
    if (direct) return direct;
    const fromIndex = await this.db.selectFrom('images').select(['digest', 'platform']).where('index_digest', '=', ref.digest).execute();
    const wanted = parsePlatform(platform);
    const ranked = fromIndex.map((r) => ({ digest: r.digest, score: platformScore(wanted, parsePlatform(r.platform)) })).sort((a, b) => b.score - a.score);
    const best = ranked[0];
    if (!best || (best.score === 0 && ranked.length > 1)) return undefined;
    return this.get(best.digest);
  }

  /** Every image, newest first. */
  async list(): Promise<ImageRecord[]> {
    const rows = await this.db.selectFrom('images').select('digest').orderBy('created_at', 'desc').orderBy('digest').execute();
    return this.load(
      this.db,
      rows.map((r) => r.digest),
    );
  }

  /** Removes one tag; false when it did not exist. */
  async removeTag(ref: TagReference): Promise<boolean> {
    const res = await this.db.deleteFrom('tags').where('repository', '=', ref.repository).where('tag', '=', ref.tag).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  /** Removes an image and its tags; returns the tags removed, or undefined when there was no such image. */
  async removeImage(digest: string): Promise<string[] | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const tags = await tx.selectFrom('tags').select(['repository', 'tag']).where('image_digest', '=', digest).execute();
      const res = await tx.deleteFrom('images').where('digest', '=', digest).executeTakeFirst();
      if (res.numDeletedRows === 0n) return undefined;
      return tags.map(formatNameTag).sort();
    });
  }

  /** Every blob a recorded image needs: manifests, configs and layers. */
  async referencedBlobs(): Promise<Set<string>> {
    const images = await this.db.selectFrom('images').select(['digest', 'config_digest']).execute();
    const layers = await this.db.selectFrom('image_layers').select('layer_digest').distinct().execute();
    return new Set([...images.flatMap((i) => [i.digest, i.config_digest]), ...layers.map((l) => l.layer_digest)]);
  }

  /** Image digests that exist. */
  async imageDigests(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('images').select('digest').execute();
    return new Set(rows.map((r) => r.digest));
  }

  /** Deletes config and layer rows no image references any more. */
  async pruneUnreferenced(): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom('layers')
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('image_layers').select('image_layers.layer_digest').whereRef('image_layers.layer_digest', '=', 'layers.digest'))),
        )
        .execute();
      await tx
        .deleteFrom('configs')
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('images').select('images.digest').whereRef('images.config_digest', '=', 'configs.digest'))),
        )
        .execute();
    });
  }

  /**
   * Records the sha256 of an image's first rootfs build. Later builds never
   * move it: it is what schedulers pin in grants, so a rootfs file changed in
   * the cache afterwards is caught by the nodes instead of being vouched for.
   */
  async recordRootfs(imageDigest: string, sha256: string, sizeBytes: number): Promise<void> {
    await insertRootfs(this.db, imageDigest, sha256, sizeBytes);
  }

  private async load(db: Db, digests: readonly string[]): Promise<ImageRecord[]> {
    if (digests.length === 0) return [];
    const images = await db
      .selectFrom('images')
      .innerJoin('configs', 'configs.digest', 'images.config_digest')
      .leftJoin('rootfs_builds', 'rootfs_builds.image_digest', 'images.digest')
      .select([
        'rootfs_builds.sha256 as rootfs_sha256',
        'images.digest',
        'images.media_type',
        'images.manifest_size',
        'images.config_digest',
        'images.platform',
        'images.index_digest',
        'images.source',
        'images.created_at',
        'configs.runtime',
        'configs.diff_ids',
        'configs.image_created',
      ])
      .where('images.digest', 'in', digests)
      .execute();
    const layers = await db
      .selectFrom('image_layers')
      .innerJoin('layers', 'layers.digest', 'image_layers.layer_digest')
      .select(['image_layers.image_digest', 'image_layers.position', 'image_layers.layer_digest', 'image_layers.media_type', 'layers.size_bytes'])
      .where('image_layers.image_digest', 'in', digests)
      .orderBy('image_layers.image_digest')
      .orderBy('image_layers.position')
      .execute();
    const tags = await db.selectFrom('tags').select(['repository', 'tag', 'image_digest']).where('image_digest', 'in', digests).execute();
    const byDigest = new Map<string, ImageRecord>();
    for (const row of images) {
      byDigest.set(row.digest, {
        digest: row.digest,
        mediaType: row.media_type,
        manifestSize: Number(row.manifest_size),
        configDigest: row.config_digest,
        config: row.runtime,
        diffIds: row.diff_ids,
        ...(row.image_created ? { imageCreated: row.image_created } : {}),
        layers: [],
        platform: row.platform,
        ...(row.index_digest ? { indexDigest: row.index_digest } : {}),
        source: row.source,
        createdAt: row.created_at,
        tags: [],
        ...(row.rootfs_sha256 ? { rootfsSha256: row.rootfs_sha256 } : {}),
      });
    }
    for (const l of layers) byDigest.get(l.image_digest)?.layers.push({ digest: l.layer_digest, mediaType: l.media_type, size: Number(l.size_bytes) });
    for (const t of tags) byDigest.get(t.image_digest)?.tags.push(formatNameTag(t));
    for (const record of byDigest.values()) record.tags.sort();
    return digests.map((d) => byDigest.get(d)).filter((r): r is ImageRecord => r !== undefined);
  }
}

/** Records a rootfs build's sha256 unless the image has one: the first recorded is the one grants pin. */
async function insertRootfs(db: Db, imageDigest: string, sha256: string, sizeBytes: number): Promise<void> {
  await db
    .insertInto('rootfs_builds')
    .values({ image_digest: imageDigest, sha256, size_bytes: sizeBytes })
    .onConflict((oc) => oc.column('image_digest').doNothing())
    .execute();
}
