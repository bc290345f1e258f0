// Builds the deployables: one ESM file each, by esbuild, rebuilt only when an input changed.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { type Deployable, type DeployableName, deployables, repoRoot } from './deployables.js';

export interface BundleResult {
  readonly outfile: string;
  /** False when the bundle was up to date. */
  readonly rebuilt: boolean;
}

// CommonJS dependencies (pino, commander, pg) call require() for Node built-ins.
const REQUIRE_SHIM = ["import { createRequire as __shellwegoCreateRequire } from 'node:module';", 'const require = __shellwegoCreateRequire(import.meta.url);'];
/** Files outside the module graph that change every output: the lock file and this build. */
const EXTRA_INPUTS = [join(repoRoot, 'package-lock.json'), import.meta.filename, join(import.meta.dirname, 'deployables.ts')];

const inputsFileOf = (outfile: string) => `${outfile}.inputs.json`;

/**
 * In a bundle every module's `import.meta` is the bundle's. Code that finds files next to its
 * own source (the launcher finds deploy/ scripts that way) keeps finding them: each module's
 * `import.meta.url`, `.filename` and `.dirname` become its source file's.
 */
const sourceLocations: Plugin = {
  name: 'source-locations',
  setup(builder) {
    builder.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      if (!source.includes('import.meta.')) return undefined;
      const contents = source
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(path).href))
        .replaceAll('import.meta.filename', JSON.stringify(path))
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(path)));
      return { contents, loader: 'ts' };
    });
  },
};

/** Builds a deployable when its bundle is missing or older than any of its inputs. */
export async function ensureBuilt(name: DeployableName, options: { force?: boolean } = {}): Promise<BundleResult> {
  const spec = deployables[name];
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
    // esbuild is a build tool with a native binary: whatever imports it finds it in node_modules.
    external: ['esbuild', ...(spec.external ?? [])],
    plugins: [sourceLocations],
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
  });
  const inputs = Object.keys(result.metafile.inputs).map((input) => resolve(process.cwd(), input));
  // Renamed into place: a process starting from the bundle meanwhile sees the old one or the new
  // one, never half of one (two builds at once both write whole files).
  await replaceFile(spec.outfile, result.outputFiles[0]?.contents ?? new Uint8Array());
  await replaceFile(inputsFileOf(spec.outfile), `${JSON.stringify({ inputs }, null, 2)}\n`);
  return { outfile: spec.outfile, rebuilt: true };
}

async function upToDate(spec: Deployable): Promise<boolean> {
  try {
    const built = (await stat(spec.outfile)).mtimeMs;
    const { inputs } = JSON.parse(await readFile(inputsFileOf(spec.outfile), 'utf8')) as { inputs: string[] };
    for (const input of [...inputs, ...EXTRA_INPUTS]) {
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
