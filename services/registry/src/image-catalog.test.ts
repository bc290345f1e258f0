import { randomBytes } from 'node:crypto';
import { type Database, openDatabase } from '@shellwego/kit/db';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageCatalog } from './image-catalog.js';
import { migrations } from './migrations.js';
import type { ImportedImage } from './oci/imported-image.js';
import { MediaType } from './oci/media-types.js';
import type { RegistryDatabase } from './schema.js';

const POSTGRES_URL = process.env.SHELLWEGO_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresUnreachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    return undefined;
  } catch (err) {
    return `no Postgres at ${POSTGRES_URL} (${(err as Error).message}); set SHELLWEGO_TEST_POSTGRES_URL`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const d = (c: string) => `sha256:${c.repeat(64)}`;

function fakeImage(manifest: string, config: string, layers: string[], extra: Partial<ImportedImage> = {}): ImportedImage {
  const layerRefs = layers.map((l, i) => ({ digest: l, mediaType: MediaType.OciLayerGzip, size: 100 + i }));
  return {
    manifestDigest: manifest,
    manifestSize: 400,
    manifest: {
      kind: 'manifest',
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config, size: 50, annotations: {}, urls: [] },
      layers: layerRefs.map((l) => ({ ...l, annotations: {}, urls: [] })),
      annotations: {},
    },
    configDigest: config,
    config: {
      entrypoint: ['/app'],
      cmd: ['--serve'],
      env: ['A=1'],
      workingDir: '/srv',
      user: 'app',
      exposedPorts: ['8080/tcp'],
      labels: { team: 'x' },
      stopSignal: '',
    },
    created: '2024-01-02T03:04:05Z',
    layers: layerRefs,
    diffIds: layers.map((_, i) => d(String(i))),
    platform: { os: 'linux', architecture: 'amd64' },
    tags: [],
    format: 'oci',
    ...extra,
  };
}

const skipPostgres = await postgresUnreachable();
const backends = [
  { name: 'pglite', url: 'memory://', skip: undefined },
  { name: 'postgres', url: POSTGRES_URL, skip: skipPostgres },
] as const;

for (const backend of backends) {
  describe.skipIf(!!backend.skip)(`ImageCatalog on ${backend.name}${backend.skip ? ` (skipped: ${backend.skip})` : ''}`, () => {
    let database: Database<RegistryDatabase>;
    let catalog: ImageCatalog;
    const schema = `registry_t_${randomBytes(5).toString('hex')}`;

    beforeAll(async () => {
      database = await openDatabase<RegistryDatabase>({ url: backend.url, schema, migrations });
      catalog = new ImageCatalog(database.db);
    });
    afterAll(async () => {
      if (backend.name === 'postgres') await sql`DROP SCHEMA ${sql.id(schema)} CASCADE`.execute(database.db);
      await database?.close();
    });

    it('records images with config, layers and tags, and resolves tags, digests and index digests', async () => {
      const a = fakeImage(d('a'), d('c'), [d('1'), d('2')], { indexDigest: d('f') });
      const recorded = await catalog.record(a, { source: 'import oci', tags: [{ kind: 'tag', repository: 'shop', tag: '1' }] });
      expect(recorded).toMatchObject({
        digest: d('a'),
        configDigest: d('c'),
        config: a.config,
        diffIds: a.diffIds,
        imageCreated: '2024-01-02T03:04:05Z',
        layers: a.layers,
        platform: 'linux/amd64',
        indexDigest: d('f'),
        tags: ['shop:1'],
      });
      // Recording the same image again only adds tags; a tag moves to the newest image it is given to.
      await catalog.record(a, { source: 'import oci', tags: [{ kind: 'tag', repository: 'shop', tag: 'latest' }] });
      const b = fakeImage(d('b'), d('c'), [d('2'), d('3')]);
      await catalog.record(b, { source: 'pull x', tags: [{ kind: 'tag', repository: 'shop', tag: 'latest' }] });
      expect((await catalog.get(d('a')))?.tags).toEqual(['shop:1']);
      expect((await catalog.resolve({ kind: 'tag', repository: 'shop', tag: 'latest' }, 'linux/amd64'))?.digest).toBe(d('b'));
      expect((await catalog.resolve({ kind: 'digest', digest: d('f') }, 'linux/amd64'))?.digest).toBe(d('a'));
      expect(await catalog.resolve({ kind: 'digest', digest: d('e') }, 'linux/amd64')).toBeUndefined();
      expect((await catalog.list()).map((i) => i.digest).sort()).toEqual([d('a'), d('b')]);
      expect([...(await catalog.referencedBlobs())].sort()).toEqual([d('1'), d('2'), d('3'), d('a'), d('b'), d('c')].sort());
    });

    it('removes tags and images, and prunes configs and layers no image uses', async () => {
      expect(await catalog.removeTag({ kind: 'tag', repository: 'shop', tag: 'nope' })).toBe(false);
      expect(await catalog.removeTag({ kind: 'tag', repository: 'shop', tag: 'latest' })).toBe(true);
      await catalog.recordRootfs(d('b'), d('9'), 4096);
      // The first build's sha256 is the pin: a later build never moves it.
      await catalog.recordRootfs(d('b'), d('8'), 8192);
      expect((await catalog.get(d('b')))?.rootfsSha256).toBe(d('9'));
      expect((await catalog.get(d('a')))?.rootfsSha256).toBeUndefined();
      expect(await catalog.removeImage(d('b'))).toEqual([]);
      expect(await catalog.removeImage(d('b'))).toBeUndefined();
      expect(await catalog.removeImage(d('a'))).toEqual(['shop:1']);
      expect(await catalog.referencedBlobs()).toEqual(new Set());
      await catalog.pruneUnreferenced();
      expect(await database.db.selectFrom('layers').selectAll().execute()).toEqual([]);
      expect(await database.db.selectFrom('configs').selectAll().execute()).toEqual([]);
      expect(await database.db.selectFrom('rootfs_builds').selectAll().execute()).toEqual([]);
    });
  });
}
