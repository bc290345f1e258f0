// Fuzzing image archive import (`shellwego image import`, docker save and OCI layout tars): valid
// archives with one file's content mutated (JSON documents mutated field by field, blobs
// damaged), files left out, or the tar bytes themselves damaged. Each import either yields an
// image whose every blob is in the store with the digest it claims, or fails with one of the
// documented errors and leaves nothing in the store.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FUZZ_TIMEOUT_MS, FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import { type Json, jsonBytes, mutatedJson } from '@shellwego/testing/fuzz/json-mutation';
import { type ArchiveOptions, dockerArchive, type FixtureImage, ociArchive } from '@shellwego/testing/images/image-archive';
import { layerTar } from '@shellwego/testing/images/layer-tar';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../store/blob-store.js';
import { digestOf } from '../store/digest.js';
import { DigestMismatchError, SizeMismatchError } from '../store/errors.js';
import { importArchive } from './archive-import.js';
import { ImageFormatError, PlatformNotFoundError } from './errors.js';
import { imageBlobDigests } from './imported-image.js';

const DOCUMENTED = [ImageFormatError, DigestMismatchError, SizeMismatchError, PlatformNotFoundError];
const ARCHIVE_KEYS = ['Config', 'Layers', 'RepoTags', 'manifests', 'mediaType', 'digest', 'size', 'platform', 'imageLayoutVersion', 'layers', 'config'];

type Format = 'docker' | 'oci';

let work: string;
let image: FixtureImage;
/** Each format's files as the fixture writes them: name -> content. */
const originals = new Map<Format, Map<string, Buffer>>();
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'archive-fuzz-'));
  image = {
    layers: [
      await layerTar([
        { type: 'dir', path: 'etc/' },
        { type: 'file', path: 'etc/hello', content: 'hello\n' },
      ]),
      await layerTar([{ type: 'file', path: 'etc/second', content: 'two\n' }]),
    ],
    runtime: { Entrypoint: ['/bin/app'], Env: ['A=1'], ExposedPorts: { '8080/tcp': {} } },
  };
  for (const format of ['docker', 'oci'] as const) {
    const files = new Map<string, Buffer>();
    await build(format, {
      mutate: (name, bytes) => {
        files.set(name, bytes);
        return bytes;
      },
    });
    originals.set(format, files);
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function build(format: Format, options: ArchiveOptions = {}): Promise<Buffer> {
  return (format === 'docker' ? dockerArchive(image, options) : ociArchive(image, options)).then((a) => a.archive);
}

function parsedJson(bytes: Buffer): Json | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as Json;
  } catch {
    return undefined;
  }
}

/** What to do to one file of an archive. */
type FileChange = { readonly name: string } & ({ readonly kind: 'omit' } | { readonly kind: 'replace'; readonly content: Buffer });

/** One file of the archive changed: its JSON mutated field by field, a byte damaged, or left out. */
function fileChange(format: Format): fc.Arbitrary<FileChange> {
  const files = [...(originals.get(format) ?? [])];
  const jsonFiles = files.flatMap(([name, bytes]) => {
    const doc = parsedJson(bytes);
    return doc === undefined ? [] : [{ name, doc }];
  });
  return fc.oneof(
    fc
      .constantFrom(...jsonFiles)
      .chain(({ name, doc }) => mutatedJson(doc, ARCHIVE_KEYS).map((mutated): FileChange => ({ name, kind: 'replace', content: jsonBytes(mutated) }))),
    fc.tuple(fc.constantFrom(...files), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([[name, bytes], at, xor]): FileChange => {
      const content = Buffer.from(bytes);
      if (content.length > 0) content[at % content.length] = (content[at % content.length] ?? 0) ^ xor;
      return { name, kind: 'replace', content };
    }),
    fc.constantFrom(...files).map(([name]): FileChange => ({ name, kind: 'omit' })),
  );
}

function applyChange(format: Format, change: FileChange): Promise<Buffer> {
  if (change.kind === 'omit') return build(format, { omit: (name) => name === change.name });
  return build(format, { mutate: (name, bytes) => (name === change.name ? change.content : bytes) });
}

let caseNumber = 0;
async function importOnce(archive: Buffer): Promise<{ ok: true } | { ok: false; error: unknown }> {
  const root = join(work, String(caseNumber++));
  const store = await BlobStore.open(root);
  const stage = await store.stage();
  try {
    const imported = await importArchive(Readable.from([archive]), stage);
    const digests = imageBlobDigests(imported);
    await stage.commit(digests);
    // Every blob the image names is in the store with the content its digest says.
    for (const digest of digests) expect(digestOf(await readAll(store, digest))).toBe(digest);
    return { ok: true };
  } catch (error) {
    await stage.abort();
    // A failed import leaves no blob behind.
    expect(await blobFiles(root)).toEqual([]);
    return { ok: false, error };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function readAll(store: BlobStore, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.open(digest)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function blobFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.parentPath.includes('sha256')).map((e) => e.name);
}

function classify(tally: FuzzTally, outcome: { ok: true } | { ok: false; error: unknown }): void {
  if (outcome.ok) {
    tally.count('imported');
    return;
  }
  const known = DOCUMENTED.find((type) => outcome.error instanceof type);
  if (known === undefined) throw outcome.error;
  tally.count(`refused:${known.name}`);
}

describe('image archive import under fuzzing', () => {
  for (const format of ['docker', 'oci'] as const) {
    it(`imports a changed ${format} archive correctly or refuses it with a documented error, leaving nothing behind`, {
      timeout: FUZZ_TIMEOUT_MS,
    }, async () => {
      const tally = new FuzzTally();
      const property = fc.asyncProperty(fileChange(format), async (change) => classify(tally, await importOnce(await applyChange(format, change))));
      await runFuzz(`archive-import/${format}`, 400, property, tally);
      expect(tally.get('imported')).toBeGreaterThan(0);
    });
  }

  it('refuses damaged archive bytes with a documented error', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const docker = await build('docker');
    const oci = await build('oci');
    const damaged = fc.tuple(fc.constantFrom(docker, oci), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean()).map(([archive, at, xor, cut]) => {
      if (cut) return archive.subarray(0, at % archive.length);
      const copy = Buffer.from(archive);
      copy[at % copy.length] = (copy[at % copy.length] ?? 0) ^ xor;
      return copy;
    });
    const property = fc.asyncProperty(damaged, async (archive) => classify(tally, await importOnce(archive)));
    await runFuzz('archive-import/bytes', 800, property, tally);
    expect(tally.get('imported')).toBeGreaterThan(0);
  });
});
