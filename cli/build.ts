// Bundles the CLI into cli/dist/ so that `shellwego` runs plain JavaScript instead of compiling
// its TypeScript at every start:
//   npx tsx cli/build.ts [--force]
// `npm ci` runs it (the root package's prepare script) and bin/shellwego.js runs it when the
// bundle is missing or stale. It skips the build when no input changed since the last one.
//
// One esbuild build of src/main.ts, split into chunks: main.js holds commander and the command
// table, and each command's module, with the contracts and libraries only it needs, is a chunk
// imported when that command runs (src/command-table.ts). Workspace packages and npm dependencies
// are inlined, Node built-ins stay external: leaving npm packages to node_modules measured about
// twice as slow to start (Node resolves and compiles their many small files one by one).

import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { bundleDir, bundleEntry, bundleIsFresh, manifestFile, manifestText } from './bundle-manifest.js';

const repoRoot = resolve(import.meta.dirname, '..');

// Inputs outside the module graph that change the output: the locked dependencies (which stand
// for every file under node_modules, so the launcher's check stays a few dozen stats) and the build.
const EXTRA_INPUTS = [join(repoRoot, 'package-lock.json'), import.meta.filename, join(import.meta.dirname, 'bundle-manifest.js')];

// CommonJS dependencies (commander, @peculiar/x509) call require() for Node built-ins.
const REQUIRE_SHIM = "import { createRequire as __shellwegoCreateRequire } from 'node:module';\nconst require = __shellwegoCreateRequire(import.meta.url);";

/** A CLI started before a rebuild may still import its own chunks (its error path does, late). */
const OLD_OUTPUT_KEPT_MS = 24 * 60 * 60 * 1000;

export async function buildCli(options: { force?: boolean } = {}): Promise<{ rebuilt: boolean }> {
  if (!options.force && bundleIsFresh()) return { rebuilt: false };
  const startedAtMs = Date.now();
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: { main: join(import.meta.dirname, 'src/main.ts') },
    outdir: bundleDir,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: REQUIRE_SHIM },
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
  });
  await mkdir(bundleDir, { recursive: true });
  // Each file is renamed into place, the chunks (named by their content's hash) before main.js,
  // which imports them, and the manifest last: a CLI starting meanwhile runs the old bundle or the
  // new one, and two builds at once only ever write whole files.
  const outputs = [...result.outputFiles].sort((a, b) => Number(a.path === bundleEntry) - Number(b.path === bundleEntry));
  for (const output of outputs) await replaceFile(output.path, output.contents);
  const inputs = Object.keys(result.metafile.inputs)
    .filter((input) => !input.startsWith('node_modules/'))
    .map((input) => resolve(repoRoot, input));
  await replaceFile(manifestFile, manifestText(startedAtMs, [...inputs, ...EXTRA_INPUTS]));
  await removeOldOutputs(new Set([...outputs.map((output) => output.path), manifestFile]));
  return { rebuilt: true };
}

async function replaceFile(path: string, contents: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, contents);
  await rename(tmp, path);
}

/** Removes what earlier builds left (chunks this one no longer has, temp files of a failed one). */
async function removeOldOutputs(current: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(bundleDir)) {
    const path = join(bundleDir, name);
    if (current.has(path)) continue;
    const { mtimeMs } = await stat(path).catch(() => ({ mtimeMs: Date.now() }));
    if (Date.now() - mtimeMs > OLD_OUTPUT_KEPT_MS) await rm(path, { force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.filename === resolve(process.argv[1])) {
  const { rebuilt } = await buildCli({ force: process.argv.includes('--force') });
  process.stdout.write(`${rebuilt ? 'built' : 'up to date'}: ${bundleEntry}\n`);
}
