// Every process shellwego ships, where its bundle is and how it is run. npm start, the
// benchmarks, the tests and the deployment files start them from here, so all run the same thing.
// (Building them is ./build.ts; this module loads no build tool, so a launcher can use it.)
import { join } from 'node:path';

export type DeployableName = 'launcher' | 'scheduler' | 'secrets' | 'registry' | 'node-agent' | 'guest-agent';

export interface Deployable {
  readonly name: DeployableName;
  readonly entry: string;
  readonly outfile: string;
  /** Lines put before the bundle (after the require shim). */
  readonly banner?: readonly string[];
  /** Packages left to node_modules at run time (e.g. ones that load files next to their code). */
  readonly external?: readonly string[];
  /** Node options it runs with (memory settings measured for it). */
  readonly nodeFlags: readonly string[];
  /** Environment it runs with, beside its own settings. */
  readonly env: Readonly<Record<string, string>>;
}

export const repoRoot = join(import.meta.dirname, '../../..');

/**
 * Long-lived processes that allocate much and keep little: a small young generation and
 * size-favouring heap growth keep V8 from holding tens of MB of garbage capacity, and two
 * malloc arenas keep glibc from spreading native buffers over one arena per thread (measured
 * with the node agent and 100 instances, test/bench/node-agent.bench.ts).
 */
const SERVICE_NODE_FLAGS = ['--optimize-for-size', '--max-semi-space-size=1'] as const;
const SERVICE_ENV = { MALLOC_ARENA_MAX: '2' } as const;

function service(name: 'scheduler' | 'secrets' | 'registry' | 'node-agent'): Deployable {
  return {
    name,
    entry: join(repoRoot, 'services', name, 'src/main.ts'),
    outfile: join(repoRoot, 'services', name, 'dist', `${name}.mjs`),
    // PGlite loads its WebAssembly from beside its own files; it is only used when a service is
    // pointed at a data directory instead of Postgres, and imported only then.
    external: ['@electric-sql/pglite'],
    nodeFlags: SERVICE_NODE_FLAGS,
    env: SERVICE_ENV,
  };
}

export const deployables: Readonly<Record<DeployableName, Deployable>> = {
  launcher: {
    name: 'launcher',
    entry: join(repoRoot, 'scripts/start.ts'),
    outfile: join(repoRoot, 'scripts/dist/launcher.mjs'),
    external: ['@electric-sql/pglite'],
    nodeFlags: SERVICE_NODE_FLAGS,
    env: SERVICE_ENV,
  },
  scheduler: service('scheduler'),
  secrets: service('secrets'),
  registry: service('registry'),
  'node-agent': service('node-agent'),
  'guest-agent': {
    name: 'guest-agent',
    entry: join(repoRoot, 'services/guest-agent/src/main.ts'),
    outfile: join(repoRoot, 'services/guest-agent/dist/guest-agent.mjs'),
    // A virtio-serial channel parks up to two thread-pool threads in blocking device reads and
    // writes (packages/kit/src/vm-channel/byte-device.ts); libuv sizes its pool on first use.
    banner: ["process.env.UV_THREADPOOL_SIZE ??= '8';"],
    nodeFlags: [],
    env: {},
  },
};

/** The argv that runs a deployable's bundle with its settings: [node, ...flags, bundle]. */
export function commandOf(name: DeployableName, node = process.execPath): [string, ...string[]] {
  const d = deployables[name];
  return [node, ...d.nodeFlags, d.outfile];
}
