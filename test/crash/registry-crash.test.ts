// Crash injection on the registry (issue 14): killed with SIGKILL in the middle of an ImportImage
// and in the middle of a GarbageCollect, on its embedded database, then started again. Afterwards
// the blob store is consistent (every blob file holds the bytes its name is the digest of), every
// listed image has all its blobs, a half-imported image is not listed and imports again, and a
// collection finishes without taking a blob a kept image needs. Kill points are seeded (printed).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import { fuzzSettings } from '@shellwego/testing/fuzz/fuzz-run';
import { ociArchive } from '@shellwego/testing/images/image-archive';
import { layerTar } from '@shellwego/testing/images/layer-tar';
import { TestPlatform } from '@shellwego/testing/platform';
import { importBytes, type RegistryClient } from '@shellwego/testing/registry/registry-calls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHUNK = 1024 * 1024;

let platform: TestPlatform | undefined;

beforeAll(async () => {
  // No grace period, so a collection removes what it finds unreferenced at once.
  platform = await TestPlatform.start({ services: ['registry'], env: { SHELLWEGO_REGISTRY_GC_GRACE_PERIOD: '0s' } });
}, 300_000);

afterAll(async () => {
  await platform?.stop();
});

function registry(): RegistryClient {
  const p = platform as TestPlatform;
  return createMtlsClient(RegistryService, { baseUrl: p.url('registry'), server: expectedService('registry'), tls: p.admin });
}

async function imageWithRandomLayer(bytes: number, tag: string): Promise<Buffer> {
  const layer = await layerTar([{ type: 'file', path: 'data.bin', content: randomBytes(bytes) }]);
  return (await ociArchive({ layers: [layer], compression: 'none', runtime: { Cmd: ['/data.bin'] } }, { tag })).archive;
}

async function restart(): Promise<number> {
  const started = performance.now();
  await (platform as TestPlatform).restartService('registry');
  return Math.round(performance.now() - started);
}

async function killAndRestart(): Promise<number> {
  await (platform as TestPlatform).stopService('registry', 'SIGKILL');
  return restart();
}

/** Every blob file holds exactly the bytes its name is the sha256 of. */
async function expectBlobStoreConsistent(): Promise<string[]> {
  const dir = join((platform as TestPlatform).home, 'registry/blobs/sha256');
  const names = await readdir(dir);
  const wrong: string[] = [];
  for (const name of names) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(join(dir, name))) hash.update(chunk as Buffer);
    if (hash.digest('hex') !== name) wrong.push(name);
  }
  expect(wrong, 'blob files whose content is not their digest').toEqual([]);
  return names;
}

/** Every listed image's manifest, config and layers are in the store. */
async function expectImagesWhole(blobs: readonly string[]): Promise<void> {
  const have = new Set(blobs.map((hex) => `sha256:${hex}`));
  const { images } = await registry().listImages({});
  const missing = images.flatMap((image) =>
    [image.digest, ...image.layers.map((l) => l.digest)].filter((d) => !have.has(d)).map((d) => `${image.tags.join(',')}: ${d}`),
  );
  expect(missing, 'blobs a listed image needs').toEqual([]);
}

describe('the registry killed with SIGKILL', () => {
  it('leaves no half-imported image and a consistent blob store after a kill during ImportImage', { timeout: 600_000 }, async () => {
    const archive = await imageWithRandomLayer(48 * CHUNK, 'big:1');
    const chunks = Math.ceil(archive.length / CHUNK);
    const { seed } = fuzzSettings(1);
    const [killAfter] = fc.sample(fc.integer({ min: 2, max: Math.floor(chunks * 0.8) }), { seed, numRuns: 1 });
    let killed: Promise<unknown> | undefined;
    async function* requests() {
      yield { part: { case: 'header' as const, value: { name: '', format: 0, platform: '' } } };
      for (let i = 0; i < chunks; i++) {
        if (i === killAfter) killed = (platform as TestPlatform).stopService('registry', 'SIGKILL');
        yield { part: { case: 'chunk' as const, value: archive.subarray(i * CHUNK, (i + 1) * CHUNK) } };
      }
    }
    const error = await registry()
      .importImage(requests())
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(killed, 'the import ended before the kill point').toBeDefined();
    expect(error?.code, `the import the kill cut must fail as UNAVAILABLE (${error?.message})`).toBe(Code.Unavailable);
    await killed;
    const restartMs = await restart();
    const { images } = await registry().listImages({});
    expect(images.flatMap((i) => i.tags)).not.toContain('big:1');
    await expectImagesWhole(await expectBlobStoreConsistent());
    // The same archive imports afterwards.
    const imported = await importBytes(registry(), archive);
    expect(imported.tags).toContain('big:1');
    await expectImagesWhole(await expectBlobStoreConsistent());
    console.log(
      `[registry crash] seed ${seed}: killed after chunk ${killAfter} of ${chunks} of an import; serving again in ${restartMs} ms, store consistent, imported again`,
    );
  });

  it('keeps every blob a kept image needs after a kill during GarbageCollect, and the next collection finishes', { timeout: 600_000 }, async () => {
    const kept: string[] = [];
    const dropped: string[] = [];
    for (let i = 0; i < 24; i++) {
      const tag = `gc-${i}:1`;
      const image = await importBytes(registry(), await imageWithRandomLayer(CHUNK / 4, tag));
      if (i % 2 === 0) kept.push(tag);
      else dropped.push(image.digest);
    }
    // By digest: deleting a tag leaves the image, untagged.
    for (const digest of dropped) await registry().deleteImage({ reference: digest });
    const before = (await expectBlobStoreConsistent()).length;
    const collecting = registry()
      .garbageCollect({})
      .then(
        () => 'finished',
        (e: unknown) => Code[ConnectError.from(e).code],
      );
    await new Promise((resolve) => setTimeout(resolve, 5));
    const restartMs = await killAndRestart();
    const outcome = await collecting;
    const afterKill = (await expectBlobStoreConsistent()).length;
    await expectImagesWhole(await expectBlobStoreConsistent());
    const { images } = await registry().listImages({});
    expect(images.flatMap((i) => i.tags).sort()).toEqual(expect.arrayContaining(kept));
    const collected = await registry().garbageCollect({});
    const after = await expectBlobStoreConsistent();
    await expectImagesWhole(after);
    // Each dropped image had its own layer, config and manifest; the kept ones keep theirs.
    expect(after.length).toBeLessThanOrEqual(before - dropped.length * 3);
    console.log(
      `[registry crash] GarbageCollect ${outcome === 'finished' ? 'finished before the kill' : `cut by the kill (${outcome})`}: ${before - afterKill} of ${before - after.length} unreferenced blobs gone at the kill; serving again in ${restartMs} ms; the next collection freed ${collected.bytesFreed} bytes, store consistent`,
    );
  });
});
