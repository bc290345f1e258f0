import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore } from './blob-store.js';
import { digestOf } from './digest.js';
import { BlobNotFoundError, DigestMismatchError, InvalidDigestError, SizeMismatchError } from './errors.js';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function* chunked(bytes: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('BlobStore', () => {
  let root: string;
  let store: BlobStore;
  const content = Buffer.from(`${'x'.repeat(10_000)}end`);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'blob-store-'));
    store = await BlobStore.open(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const blobFiles = () => readdir(store.blobsDir);
  const tmpFiles = () => readdir(store.tmpDir);

  it('stores content under its sha256 and reads it back', async () => {
    const res = await store.ingest(chunked(content), sha(content), content.length);
    expect(res).toEqual({ digest: sha(content), size: content.length, created: true });
    expect(store.path(res.digest)).toBe(join(root, 'blobs', 'sha256', sha(content).slice(7)));
    expect(await readFile(store.path(res.digest))).toEqual(content);
    expect(await store.has(res.digest)).toBe(true);
    expect(await store.stat(res.digest)).toEqual({ digest: res.digest, size: content.length });
    expect(await readAll(await store.open(res.digest))).toEqual(content);
    expect(await readAll(await store.open(res.digest, { start: 10_000 }))).toEqual(Buffer.from('end'));
    const listed = [];
    for await (const b of store.list()) listed.push(b);
    expect(listed).toEqual([{ digest: res.digest, size: content.length }]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('computes the digest when none is expected, and deduplicates', async () => {
    const a = await store.ingest(Readable.from(chunked(content)));
    const b = await store.ingest(content);
    expect(a.digest).toBe(digestOf(content));
    expect([a.created, b.created]).toEqual([true, false]);
    expect(await blobFiles()).toHaveLength(1);
  });

  it('rejects a digest mismatch naming both digests and keeps nothing', async () => {
    const wrong = sha(Buffer.from('something else'));
    const err = await store.ingest(chunked(content), wrong).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).message).toContain(wrong);
    expect((err as DigestMismatchError).message).toContain(sha(content));
    expect(await blobFiles()).toEqual([]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('rejects content longer or shorter than announced and keeps nothing', async () => {
    await expect(store.ingest(chunked(content), undefined, 5000)).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(store.ingest(chunked(content), sha(content), content.length + 1)).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await blobFiles()).toEqual([]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('keeps nothing when the source fails midway or at once, in the store and in a staging area', async () => {
    async function* failing(partial: boolean): AsyncGenerator<Buffer> {
      if (partial) yield Buffer.from('partial');
      throw new Error('connection reset');
    }
    const staging = await store.stage();
    for (const partial of [true, false]) {
      await expect(store.ingest(failing(partial))).rejects.toThrow('connection reset');
      await expect(staging.ingest(failing(partial))).rejects.toThrow('connection reset');
      expect(await blobFiles()).toEqual([]);
      expect(await tmpFiles()).toEqual([basename(staging.dir)]);
      expect(await readdir(staging.dir)).toEqual([]);
    }
    // Nothing opens the file late, after the failure was reported.
    await sleep(200);
    expect(await tmpFiles()).toEqual([basename(staging.dir)]);
    expect(await readdir(staging.dir)).toEqual([]);
    await staging.abort();
    expect(await tmpFiles()).toEqual([]);
  });

  it('refuses digests that are not strict sha256 (no path injection)', async () => {
    const hex = sha(content).slice(7);
    for (const bad of ['sha256:../../../etc/passwd', `sha256:${hex.toUpperCase()}`, `sha512:${hex}`, `sha256:${hex}/x`, hex, `sha256:${hex}0`]) {
      expect(() => store.path(bad)).toThrow(InvalidDigestError);
      await expect(store.has(bad)).rejects.toBeInstanceOf(InvalidDigestError);
      await expect(store.ingest(content, bad)).rejects.toBeInstanceOf(InvalidDigestError);
    }
    expect(await tmpFiles()).toEqual([]);
  });

  it('lets concurrent writers of the same content all succeed with one file', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => store.ingest(chunked(content, 777), sha(content))));
    expect(results.every((r) => r.digest === sha(content))).toBe(true);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await blobFiles()).toEqual([sha(content).slice(7)]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('reports missing blobs and removes blobs', async () => {
    const { digest } = await store.ingest(content);
    expect(await store.remove(digest)).toBe(true);
    expect(await store.remove(digest)).toBe(false);
    expect(await store.stat(digest)).toBeUndefined();
    await expect(store.open(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('keeps staged blobs out of the store until commit, which publishes only what is kept', async () => {
    const other = Buffer.from('other');
    const stage = await store.stage();
    await stage.ingest(content);
    await stage.ingest(other);
    expect(await store.has(sha(content))).toBe(false);
    expect(await stage.has(sha(content))).toBe(true);
    expect(await readAll(await stage.open(sha(other)))).toEqual(other);
    expect(await stage.commit([sha(content)])).toEqual([sha(content)]);
    expect(await blobFiles()).toEqual([sha(content).slice(7)]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('reads through to the store from a staging area and aborts without a trace', async () => {
    await store.ingest(content);
    const stage = await store.stage();
    expect(await stage.stat(sha(content))).toEqual({ digest: sha(content), size: content.length });
    await stage.ingest(Buffer.from('temporary'));
    await stage.abort();
    expect(await blobFiles()).toEqual([sha(content).slice(7)]);
    expect(await tmpFiles()).toEqual([]);
    await expect(stage.ingest(content)).rejects.toThrow('already committed or aborted');
  });

  it('fails a commit of a digest that is neither staged nor stored', async () => {
    const stage = await store.stage();
    await expect(stage.commit([sha(Buffer.from('nowhere'))])).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await tmpFiles()).toEqual([]);
  });
});
