// Fuzzing layer application (untrusted tar layers from any image a user imports or pulls):
// every generated layer stack is either applied with the result the changeset rules give, or
// refused with LayerRejectedError; nothing is ever written outside the target directory.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FUZZ_TIMEOUT_MS, FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import { sha256 } from '@shellwego/testing/images/image-archive';
import { gzipLayer, type LayerEntry, layerTar } from '@shellwego/testing/images/layer-tar';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerRejectedError } from './errors.js';
import { applyLayers, type LayerSource } from './layer-apply.js';

/** Where a symlink to `/` followed by a write would land on the host; must never appear. */
const ESCAPE_NAME = `shellwego-fuzz-escape-${process.pid}`;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'layer-fuzz-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(join('/tmp', ESCAPE_NAME), { recursive: true, force: true });
});

let caseNumber = 0;
/** A fresh target directory beside a sentinel an escape would reach. */
async function freshCase(): Promise<{ dir: string; target: string; sentinel: string }> {
  const dir = join(work, String(caseNumber++));
  const target = join(dir, 'root');
  const sentinel = join(dir, 'outside');
  await mkdir(target, { recursive: true });
  await mkdir(sentinel);
  return { dir, target, sentinel };
}

async function sourcesOf(layers: readonly (readonly LayerEntry[])[]): Promise<LayerSource[]> {
  return Promise.all(
    layers.map(async (entries, i) => {
      const tarBytes = await layerTar(entries);
      const blob = i % 2 === 1 ? gzipLayer(tarBytes) : tarBytes;
      return { digest: sha256(blob), diffId: sha256(tarBytes), open: async () => Readable.from([blob]) };
    }),
  );
}

type Outcome = { applied: true } | { applied: false; error: unknown };
async function attempt(sources: LayerSource[], target: string): Promise<Outcome> {
  try {
    await applyLayers(sources, target, { ownership: 'record' });
    return { applied: true };
  } catch (error) {
    return { applied: false, error };
  }
}

/** Nothing left the target: the sentinel is empty, the case directory holds only the two, no host escape. */
function assertContained(dir: string, sentinel: string): void {
  expect(readdirSync(sentinel)).toEqual([]);
  expect(readdirSync(dir).sort()).toEqual(['outside', 'root']);
  expect(existsSync(join('/tmp', ESCAPE_NAME))).toBe(false);
}

// Hostile layers: names with traversal, absolute paths, whiteout markers and long components;
// symlinks to the root, above it and to the host's /tmp; hard links anywhere; special files.
// Mostly ordinary names, so that layers often get far enough for links and whiteouts to matter.
const component = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', 'b', 'c', 'tmp', ESCAPE_NAME, 'é') },
  { weight: 2, arbitrary: fc.constantFrom('.wh.a', '.wh.b', '.wh.tmp', '.wh..wh..opq', '.wh..wh.plnk', '.', '') },
  { weight: 1, arbitrary: fc.constantFrom('..', 'x'.repeat(256)) },
);
const rawPath = fc
  .tuple(
    fc.oneof({ weight: 8, arbitrary: fc.constantFrom('', './') }, { weight: 1, arbitrary: fc.constantFrom('/', '../') }),
    fc.array(component, { minLength: 1, maxLength: 4 }),
    fc.constantFrom('', '/'),
  )
  .map(([lead, parts, trail]) => `${lead}${parts.join('/')}${trail}`);
const linkTarget = fc.oneof(rawPath, fc.constantFrom('/', '/tmp', '..', '../..', '../../..', `/tmp/${ESCAPE_NAME}`, '.', 'a/b'));
const hostileEntry: fc.Arbitrary<LayerEntry> = fc.oneof(
  rawPath.map((path) => ({ type: 'dir', path }) as const),
  fc.tuple(rawPath, fc.uint8Array({ maxLength: 64 })).map(([path, content]) => ({ type: 'file', path, content }) as const),
  fc.tuple(rawPath, linkTarget).map(([path, target]) => ({ type: 'symlink', path, target }) as const),
  fc.tuple(rawPath, rawPath).map(([path, target]) => ({ type: 'hardlink', path, target }) as const),
  rawPath.map((path) => ({ type: 'whiteout', path }) as const),
  rawPath.map((path) => ({ type: 'opaque', path }) as const),
  rawPath.map((path) => ({ type: 'fifo', path }) as const),
);

// Well-formed layers of files and directories only, over a small name space so paths collide.
const plainPath = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
const plainEntry = fc.oneof(
  plainPath.map((path) => ({ type: 'dir', path: `${path}/` }) as const),
  fc.tuple(plainPath, fc.string({ maxLength: 12 })).map(([path, content]) => ({ type: 'file', path, content }) as const),
);

type Node = { kind: 'dir' } | { kind: 'file'; content: string };

/**
 * The changeset rules for files and directories: missing parents become directories, a file as a
 * parent refuses the layer, a directory over a directory merges, anything else replaces the old
 * path (a replaced directory takes its contents with it). Undefined: the layer stack is refused.
 */
function expectedTree(layers: readonly (readonly { type: 'dir' | 'file'; path: string; content?: string }[])[]): Map<string, Node> | undefined {
  const tree = new Map<string, Node>();
  for (const layer of layers) {
    for (const entry of layer) {
      const parts = entry.path.split('/').filter((p) => p !== '');
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join('/');
        const node = tree.get(parent);
        if (node?.kind === 'file') return undefined;
        if (node === undefined) tree.set(parent, { kind: 'dir' });
      }
      const path = parts.join('/');
      const old = tree.get(path);
      if (entry.type === 'dir' && old?.kind === 'dir') continue;
      if (old?.kind === 'dir') for (const key of [...tree.keys()]) if (key.startsWith(`${path}/`)) tree.delete(key);
      tree.set(path, entry.type === 'dir' ? { kind: 'dir' } : { kind: 'file', content: entry.content ?? '' });
    }
  }
  return tree;
}

function actualTree(root: string, prefix = '', into = new Map<string, Node>()): Map<string, Node> {
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const st = lstatSync(join(root, rel));
    if (st.isDirectory()) {
      into.set(rel, { kind: 'dir' });
      actualTree(root, rel, into);
    } else {
      into.set(rel, { kind: 'file', content: readFileSync(join(root, rel), 'utf8') });
    }
  }
  return into;
}

describe('layer application under fuzzing', () => {
  it('applies hostile layer stacks or refuses them with LayerRejectedError, never writing outside the target', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const property = fc.asyncProperty(fc.array(fc.array(hostileEntry, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }), async (layers) => {
      const { dir, target, sentinel } = await freshCase();
      const outcome = await attempt(await sourcesOf(layers), target);
      if (!outcome.applied && !(outcome.error instanceof LayerRejectedError)) throw outcome.error;
      tally.count(outcome.applied ? 'applied' : 'refused');
      assertContained(dir, sentinel);
      await rm(dir, { recursive: true, force: true });
    });
    await runFuzz('layer-apply/hostile', 1500, property, tally);
    // Both paths were exercised, or the generator is not testing what it claims to.
    expect(tally.get('applied')).toBeGreaterThan(50);
    expect(tally.get('refused')).toBeGreaterThan(50);
  });

  it('gives exactly the tree the changeset rules say for well-formed layers of files and directories', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const property = fc.asyncProperty(fc.array(fc.array(plainEntry, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }), async (layers) => {
      const { dir, target, sentinel } = await freshCase();
      const outcome = await attempt(await sourcesOf(layers), target);
      const expected = expectedTree(layers);
      if (expected === undefined) {
        expect(outcome.applied ? 'applied' : String(outcome.error)).toMatch(/is not a directory/);
        expect((outcome as { error: unknown }).error).toBeInstanceOf(LayerRejectedError);
        tally.count('refused');
      } else {
        if (!outcome.applied) throw outcome.error;
        expect(actualTree(target)).toEqual(expected);
        tally.count('applied');
      }
      assertContained(dir, sentinel);
      await rm(dir, { recursive: true, force: true });
    });
    await runFuzz('layer-apply/model', 1000, property, tally);
    expect(tally.get('applied')).toBeGreaterThan(100);
    expect(tally.get('refused')).toBeGreaterThan(10);
  });

  it('refuses damaged layer bytes (truncated, flipped, random) with LayerRejectedError', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const valid = await layerTar([
      { type: 'dir', path: 'etc/' },
      { type: 'file', path: 'etc/hostname', content: 'fuzz\n' },
      { type: 'symlink', path: 'bin', target: 'usr/bin' },
    ]);
    const damaged = fc.oneof(
      fc.nat({ max: valid.length - 1 }).map((n) => valid.subarray(0, n)),
      fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
        const copy = Buffer.from(valid);
        copy[at] = (copy[at] ?? 0) ^ xor;
        return copy;
      }),
      fc.uint8Array({ minLength: 0, maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
      fc.nat({ max: valid.length - 1 }).map((n) => gzipLayer(valid).subarray(0, Math.min(n, gzipLayer(valid).length - 1))),
    );
    const property = fc.asyncProperty(damaged, async (blob) => {
      const { dir, target, sentinel } = await freshCase();
      const source: LayerSource = { digest: sha256(blob), open: async () => Readable.from([blob]) };
      const outcome = await attempt([source], target);
      if (!outcome.applied && !(outcome.error instanceof LayerRejectedError)) throw outcome.error;
      tally.count(outcome.applied ? 'applied' : 'refused');
      assertContained(dir, sentinel);
      await rm(dir, { recursive: true, force: true });
    });
    await runFuzz('layer-apply/bytes', 1000, property, tally);
    expect(tally.get('refused')).toBeGreaterThan(100);
  });
});
