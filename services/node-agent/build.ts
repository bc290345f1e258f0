// Bundles the node agent into one ESM file, the shape it is deployed in (no TypeScript loader at
// run time: tsx alone adds ~40 MB of resident memory), with a launcher that runs it with memory
// settings for a long-lived process that allocates much and keeps little:
//   npx tsx services/node-agent/build.ts      -> .cache/node-agent/{node-agent.mjs,node-agent}
// The bundle finds no checkout around it: set SHELLWEGO_NODE_AGENT_GUEST_AGENT_BUNDLE and, for
// qemu and firecracker, SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR.

import { chmod, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');

export const NODE_AGENT_BUNDLE = join(repo, '.cache', 'node-agent', 'node-agent.mjs');
export const NODE_AGENT_LAUNCHER = join(repo, '.cache', 'node-agent', 'node-agent');

/**
 * Measured with 100 instances (test/bench/node-agent.bench.ts): a small young generation and
 * size-favouring heap growth keep V8 from holding ~40 MB of garbage capacity, two malloc arenas
 * keep glibc from spreading the native buffers of 100 VM channels over one arena per thread.
 */
export const RECOMMENDED_NODE_FLAGS = ['--optimize-for-size', '--max-semi-space-size=1'] as const;
const LAUNCHER = `#!/bin/sh
# shellwego node agent: the bundle on node with its memory settings (services/node-agent/build.ts).
MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-2} exec "\${NODE:-node}" ${RECOMMENDED_NODE_FLAGS.join(' ')} "$(dirname "$0")/node-agent.mjs" "$@"
`;

const BANNER = [
  // CommonJS dependencies (pino, commander) call require() for Node built-ins.
  "import { createRequire as __shellwegoCreateRequire } from 'node:module';",
  'const require = __shellwegoCreateRequire(import.meta.url);',
].join('\n');

export async function buildNodeAgent(): Promise<string> {
  await build({
    entryPoints: [join(here, 'src', 'main.ts')],
    outfile: NODE_AGENT_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: BANNER },
    // Only the development-only on-demand guest agent build uses it; it finds its own binary.
    external: ['esbuild'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  await writeFile(NODE_AGENT_LAUNCHER, LAUNCHER);
  await chmod(NODE_AGENT_LAUNCHER, 0o755);
  return NODE_AGENT_BUNDLE;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.stdout.write(`built: ${await buildNodeAgent()}, run it with ${NODE_AGENT_LAUNCHER}\n`);
}
