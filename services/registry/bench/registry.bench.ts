// Registry throughput, each next to the plain tools in the same run:
// - ImportImage of a ~100 MB four-layer OCI archive through the real
//   registry process (blob verification, layer application, mkfs.ext4 -d,
//   sha256 of the image) against `tar -x` of the archive and its layers plus
//   `mkfs.ext4 -d` in a shell; peak RSS of the registry process for a 25 MB
//   and the 100 MB image (it should not grow with the image).
// - FetchRootfs over mTLS on loopback against reading the same file from disk.
// Run directly (`npx tsx test/bench/registry.bench.ts`) for a table, or
// through `npm run bench registry`. Memory is in MB (10^6 bytes).

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootfsClient } from '@shellwego/clients/registry';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { BenchResult, BenchTarget } from '@shellwego/testing/bench/bench-result';
import { runIfMain } from '@shellwego/testing/bench/run-bench';
import { missingTools } from '@shellwego/testing/images/host-tools';
import { ociArchive } from '@shellwego/testing/images/image-archive';
import { type LayerEntry, layerTar } from '@shellwego/testing/images/layer-tar';
import { TestPlatform } from '@shellwego/testing/platform';
import { execa } from 'execa';

const MiB = 1024 * 1024;
const MB = 1e6;
const CHUNK = MiB;
/** From the project's issues: importing takes at most 1.3x what the plain tools take. */
const IMPORT_TARGET: BenchTarget = { on: 'ratio', bound: 'atMost', value: 1.3 };
/**
 * The project asks that the registry's memory be independent of the image size. The big image
 * is four times the small one, so memory that grew with it would show as ~4x; 1.25x leaves
 * room for sampling noise and the allocator.
 */
const RSS_TARGET: BenchTarget = { on: 'ratio', bound: 'atMost', value: 1.25 };
/** From the project's issues: FetchRootfs at least half as fast as reading the file in the same run. */
const FETCH_TARGET: BenchTarget = { on: 'ratio', bound: 'atLeast', value: 0.5 };

/** A layer of `randomMiB` incompressible and `textMiB` compressible data, spread over files. */
async function benchLayer(index: number, randomMiB: number, textMiB: number): Promise<Buffer> {
  const entries: LayerEntry[] = [{ type: 'dir', path: `layer${index}/` }];
  const random = randomBytes(randomMiB * MiB);
  for (let off = 0, i = 0; off < random.length; off += 512 * 1024, i++) {
    entries.push({ type: 'file', path: `layer${index}/blob-${i}.bin`, content: random.subarray(off, off + 512 * 1024), mode: 0o644 });
  }
  const line = `layer ${index}: the quick brown fox jumps over the lazy dog 0123456789\n`;
  const text = Buffer.from(line.repeat(Math.ceil((16 * 1024) / line.length)));
  for (let i = 0; i < (textMiB * MiB) / text.length; i++) {
    entries.push({ type: 'file', path: `layer${index}/text/f-${i}.txt`, content: text, mode: 0o644 });
  }
  entries.push({ type: 'symlink', path: `layer${index}/latest`, target: 'blob-0.bin' });
  return layerTar(entries);
}

/** Writes the archive; returns its uncompressed layer bytes and the layer blobs' hex digests, bottom first. */
async function buildArchive(file: string, layers: number, randomMiB: number, textMiB: number): Promise<{ bytes: number; layerHexes: string[] }> {
  const tars: Buffer[] = [];
  for (let i = 0; i < layers; i++) tars.push(await benchLayer(i, randomMiB, textMiB));
  const { archive, images } = await ociArchive({ layers: tars });
  await writeFile(file, archive);
  return { bytes: tars.reduce((n, t) => n + t.length, 0), layerHexes: (images[0]?.layerDigests ?? []).map((d) => d.slice(7)) };
}

/** Streams a file into ImportImage; returns the image digest. */
async function importFile(client: ReturnType<typeof createMtlsClient<typeof RegistryService>>, file: string): Promise<string> {
  async function* requests() {
    yield { part: { case: 'header' as const, value: { name: '', format: 0, platform: '' } } };
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) yield { part: { case: 'chunk' as const, value: chunk as Buffer } };
  }
  const { image } = await client.importImage(requests());
  if (!image) throw new Error('no image');
  return image.digest;
}

/** Samples a process's resident set every 20 ms while `work` runs; returns the peak in bytes. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const read = async () => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  let peak = await read();
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await read());
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const result = await work();
    return { result, peak };
  } finally {
    running = false;
    await sampler;
  }
}

/** The same work with the plain tools: unpack the archive, each layer in order, then mkfs.ext4 -d. */
const PLAIN_TOOLS = `
set -euo pipefail
work="$1"; archive="$2"; shift 2
mkdir -p "$work/archive" "$work/root"
tar -xf "$archive" -C "$work/archive"
for blob in "$@"; do
  tar -xzf "$work/archive/blobs/sha256/$blob" -C "$work/root"
done
bytes=$(du -sb "$work/root" | cut -f1)
mkfs.ext4 -q -F -m 0 -d "$work/root" "$work/rootfs.ext4" "$(( bytes * 12 / 10 / 1024 + 8192 ))k"
sha256sum "$work/rootfs.ext4" >/dev/null
`;

async function seconds<T>(work: () => Promise<T>): Promise<{ result: T; s: number }> {
  const start = process.hrtime.bigint();
  const result = await work();
  return { result, s: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Best of three runs, in MB/s (10^6 bytes, as the target is written). */
async function throughput(path: string, bytes: number, read: () => Promise<number>): Promise<number> {
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const { result, s } = await seconds(read);
    if (result !== bytes) throw new Error(`${path}: read ${result} of ${bytes} bytes`);
    best = Math.max(best, bytes / 1e6 / s);
  }
  return best;
}

export async function run(): Promise<BenchResult[]> {
  const missing = missingTools(['mkfs.ext4', 'debugfs', 'dumpe2fs', 'tar', 'sha256sum'], 'install e2fsprogs, tar and coreutils');
  if (missing !== undefined) {
    return [
      { name: 'import + rootfs build', target: IMPORT_TARGET, notRun: missing },
      { name: 'registry peak RSS importing the big image', target: RSS_TARGET, notRun: missing },
      { name: 'FetchRootfs over mTLS on loopback', target: FETCH_TARGET, notRun: missing },
    ];
  }
  const work = await mkdtemp(join(tmpdir(), 'registry-bench-'));
  const platform = await TestPlatform.start({ services: ['registry'], env: { SHELLWEGO_LOG_LEVEL: 'warn' } });
  try {
    const client = createMtlsClient(RegistryService, { baseUrl: platform.url('registry'), server: expectedService('registry'), tls: platform.admin });
    const pid = platform.service('registry').process.child.pid as number;
    const small = join(work, 'small.tar');
    const big = join(work, 'big.tar');
    const { bytes: smallBytes } = await buildArchive(small, 2, 10, 2);
    const { bytes: bigBytes, layerHexes } = await buildArchive(big, 4, 20, 4);

    // Warm up the process (tsx, PGlite, the first mkfs) so the timings are of steady-state work;
    // then start every measured import from an empty store, so each one builds its rootfs.
    const forget = async (digest: string) => {
      await client.deleteImage({ reference: digest });
      await client.garbageCollect({});
    };
    await forget(await importFile(client, small));
    const smallRun = await peakRss(pid, () => importFile(client, small));
    await forget(smallRun.result);
    // Best of two for both sides: the machine is shared, and a slow outlier says nothing about either.
    const first = await peakRss(pid, () => seconds(() => importFile(client, big)));
    await forget(first.result.result);
    const bigRun = await peakRss(pid, () => seconds(() => importFile(client, big)));
    if (first.result.s < bigRun.result.s) bigRun.result.s = first.result.s;
    bigRun.peak = Math.max(bigRun.peak, first.peak);
    const plainRuns = [];
    for (const i of [1, 2]) plainRuns.push(await seconds(() => execa('bash', ['-c', PLAIN_TOOLS, 'plain', join(work, `plain-${i}`), big, ...layerHexes])));
    const plain = { s: Math.min(...plainRuns.map((r) => r.s)) };

    const digest = bigRun.result.result;
    const { image } = await client.resolveImage({ reference: digest });
    const layersMiB = Number(image?.sizeBytes ?? 0) / MiB;
    // FetchRootfs: drained by the client (no disk writes), against reading the cached file.
    const cached = join(platform.home, 'registry', 'rootfs', `${digest.slice(7)}.ext4`);
    const rootfsBytes = (await readFile(cached)).length;
    const fetcher = createRootfsClient({ baseUrl: platform.url('registry'), tls: platform.admin });
    const overRpc = await throughput('FetchRootfs', rootfsBytes, async () => {
      let n = 0;
      for await (const m of fetcher.fetchRootfs({ imageDigest: digest })) if (m.part.case === 'chunk') n += m.part.value.data.length;
      return n;
    });
    const fromDisk = await throughput(cached, rootfsBytes, async () => {
      let n = 0;
      for await (const chunk of createReadStream(cached, { highWaterMark: CHUNK })) n += (chunk as Buffer).length;
      return n;
    });

    return [
      {
        name: `import + rootfs build, ${(bigBytes / MiB).toFixed(0)} MiB in ${image?.layers.length ?? 0} layers (${layersMiB.toFixed(0)} MiB gzip)`,
        value: bigRun.result.s,
        unit: 's',
        baseline: { name: 'tar -x + mkfs.ext4 -d + sha256sum', value: plain.s },
        target: IMPORT_TARGET,
      },
      { name: `registry peak RSS importing ${(smallBytes / MiB).toFixed(0)} MiB`, value: smallRun.peak / MB, unit: 'MB' },
      {
        name: `registry peak RSS importing ${(bigBytes / MiB).toFixed(0)} MiB`,
        value: bigRun.peak / MB,
        unit: 'MB',
        baseline: { name: `peak RSS importing ${(smallBytes / MiB).toFixed(0)} MiB`, value: smallRun.peak / MB },
        target: RSS_TARGET,
      },
      {
        name: `FetchRootfs over mTLS on loopback (${(rootfsBytes / MiB).toFixed(0)} MiB ext4)`,
        value: overRpc,
        unit: 'MB/s',
        baseline: { name: 'reading the same file from disk', value: fromDisk },
        target: FETCH_TARGET,
      },
    ];
  } finally {
    await platform.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
