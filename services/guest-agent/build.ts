// Bundles the guest agent into one self-contained ESM file for the guest image:
//   npx tsx services/guest-agent/build.ts [--force]
// Skips the build when the bundle is newer than every input of the previous build.

import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');

export const GUEST_AGENT_BUNDLE = join(here, 'dist', 'guest-agent.mjs');
const METAFILE = join(here, 'dist', 'guest-agent.meta.json');
const ENTRY = join(here, 'src', 'main.ts');

// Inputs outside the module graph that change the output: this script and the locked deps.
const EXTRA_INPUTS = [fileURLToPath(import.meta.url), join(repo, 'package-lock.json')];

const BANNER = [
  // CommonJS dependencies (pino, commander) call require() for Node built-ins.
  "import { createRequire as __shellwegoCreateRequire } from 'node:module';",
  'const require = __shellwegoCreateRequire(import.meta.url);',
  // A virtio-serial channel parks up to two thread-pool threads in blocking device reads and
  // writes (lib/vm-channel/byte-device.ts); libuv sizes its pool on first use, after this line.
  "process.env.UV_THREADPOOL_SIZE ??= '8';",
].join('\n');

export interface BuildResult {
  readonly outfile: string;
  /** False when the cached bundle was up to date. */
  readonly rebuilt: boolean;
}

export async function buildGuestAgent(options: { force?: boolean } = {}): Promise<BuildResult> {
  if (!options.force && (await upToDate())) {
    return { outfile: GUEST_AGENT_BUNDLE, rebuilt: false };
  }
  const result = await build({
    entryPoints: [ENTRY],
    outfile: GUEST_AGENT_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: BANNER },
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const inputs = Object.keys(result.metafile.inputs).map((input) => resolve(process.cwd(), input));
  await writeFile(METAFILE, `${JSON.stringify({ inputs }, null, 2)}\n`);
  return { outfile: GUEST_AGENT_BUNDLE, rebuilt: true };
}

async function upToDate(): Promise<boolean> {
  try {
    const output = await stat(GUEST_AGENT_BUNDLE);
    const { inputs } = JSON.parse(await readFile(METAFILE, 'utf8')) as { inputs: string[] };
    for (const input of [...inputs, ...EXTRA_INPUTS]) {
      if ((await stat(input)).mtimeMs > output.mtimeMs) {
        return false;
      }
    }
    return true;
  } catch {
    // No bundle, no metafile, or an input is gone: build.
    return false;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { outfile, rebuilt } = await buildGuestAgent({ force: process.argv.includes('--force') });
  process.stdout.write(`${rebuilt ? 'built' : 'up to date'}: ${outfile}\n`);
}
