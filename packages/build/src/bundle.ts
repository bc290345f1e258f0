// One ESM file per shipped process, built by esbuild and rebuilt only when an input changed.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

export interface BundleSpec {
  readonly entry: string;
  readonly outfile: string;
  /** Lines put before the bundle (after the require shim). */
  readonly banner?: readonly string[];
  /** Packages left to node_modules at run time (e.g. ones that load files next to their code). */
  readonly external?: readonly string[];
  /** Files outside the module graph that change the output (the lock file, the build's own code). */
  readonly extraInputs?: readonly string[];
}

export interface BundleResult {
  readonly outfile: string;
  /** False when the bundle was up to date. */
  readonly rebuilt: boolean;
}

// CommonJS dependencies (pino, commander, pg) call require() for Node built-ins.
const REQUIRE_SHIM = ["import { createRequire as __shellwegoCreateRequire } from 'node:module';", 'const require = __shellwegoCreateRequire(import.meta.url);'];

const metafileOf = (outfile: string) => `${outfile}.inputs.json`;

export async function bundle(spec: BundleSpec, options: { force?: boolean } = {}): Promise<BundleResult> {
  if (!options.force && (await upToDate(spec))) return { outfile: spec.outfile, rebuilt: false };
  await mkdir(dirname(spec.outfile), { recursive: true });
  const result = await build({
    entryPoints: [spec.entry],
    outfile: spec.outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: [...REQUIRE_SHIM, ...(spec.banner ?? [])].join('\n') },
    external: [...(spec.external ?? [])],
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
  });
  const inputs = Object.keys(result.metafile.inputs).map((input) => resolve(process.cwd(), input));
  // Renamed into place: a process starting from the bundle meanwhile sees the old one or the new
  // one, never half of one (two builds at once both write whole files).
  await replaceFile(spec.outfile, result.outputFiles[0]?.contents ?? new Uint8Array());
  await replaceFile(metafileOf(spec.outfile), `${JSON.stringify({ inputs }, null, 2)}\n`);
  return { outfile: spec.outfile, rebuilt: true };
}

/** True when the bundle is newer than every input of the build that made it. */
export async function upToDate(spec: BundleSpec): Promise<boolean> {
  try {
    const built = (await stat(spec.outfile)).mtimeMs;
    const { inputs } = JSON.parse(await readFile(metafileOf(spec.outfile), 'utf8')) as { inputs: string[] };
    for (const input of [...inputs, ...(spec.extraInputs ?? [])]) {
      if ((await stat(input)).mtimeMs > built) return false;
    }
    return true;
  } catch {
    // No bundle, no record of its inputs, or an input is gone: build.
    return false;
  }
}

async function replaceFile(path: string, contents: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, contents);
  await rename(tmp, path);
}

export const repoRoot = join(import.meta.dirname, '../../..');
