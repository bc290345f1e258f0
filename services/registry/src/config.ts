import { defaultPorts, defineConfig, duration, expandPath, integer, path, string } from '../../../lib/config/index.js';
import type { Setting } from '../../../lib/config/index.js';
import { databaseSettings, serverSettings } from '../../../lib/service/index.js';

const GIB = 1024 ** 3;

/**
 * One or more paths separated by commas, each expanded like path(). Several
 * grant public keys let the scheduler's signing key roll over.
 */
function pathList(options: { default: string; description: string }): Setting<readonly string[]> {
  const expected = 'one or more paths separated by "," (a leading ~ or $SHELLWEGO_HOME is expanded)';
  return Object.freeze({
    kind: 'pathList',
    description: options.description,
    sensitive: false,
    defaultInput: options.default,
    optional: false,
    parse(input: unknown, context: { env: NodeJS.ProcessEnv }) {
      const pieces = typeof input === 'string' ? input.split(',').map((piece) => piece.trim()) : Array.isArray(input) ? input : [];
      const paths = pieces.map((piece) => (typeof piece === 'string' ? expandPath(piece, context.env) : undefined));
      if (paths.length === 0 || paths.some((p) => p === undefined)) return { ok: false as const, expected };
      return { ok: true as const, value: Object.freeze(paths as string[]) };
    },
  });
}

/** Settings of the registry process; env vars start with SHELLWEGO_REGISTRY_. */
export const registryConfig = defineConfig('SHELLWEGO_REGISTRY', {
  ...serverSettings('registry', defaultPorts.registry),
  ...databaseSettings('registry'),
  storeDir: path({
    default: '$SHELLWEGO_HOME/registry',
    description: 'blob store (blobs/sha256/<hex>) and rootfs cache (rootfs/<hex>.ext4); one file system, so publishing is an atomic link',
  }),
  grantPublicKeys: pathList({
    default: '$SHELLWEGO_HOME/pki/grant-signing.pub',
    description: "PEM file(s) of the scheduler's Ed25519 grant public key, comma-separated during a key rollover",
  }),
  platform: string({ default: 'linux/amd64', description: 'os/arch[/variant] picked from multi-platform images when a request names none' }),
  rootfsHeadroomPercent: integer({ default: 20, min: 0, max: 1000, description: 'free space in each ext4 root filesystem, in percent of its content' }),
  maxImportBytes: integer({ default: 20 * GIB, min: 1024, description: 'largest archive ImportImage accepts, in bytes' }),
  maxImageEntries: integer({ default: 1_000_000, min: 1, description: 'most tar entries over all layers of one image (tar bomb guard)' }),
  maxImageBytes: integer({ default: 64 * GIB, min: 1, description: 'most bytes of file content over all layers of one image' }),
  maxConcurrentBuilds: integer({ default: 2, min: 1, max: 64, description: 'rootfs builds of different images running at once' }),
  gcGracePeriod: duration({
    default: '15m',
    description: 'GarbageCollect keeps unreferenced blobs younger than this (an import or pull on another replica may be about to reference them)',
  }),
  pullTimeout: duration({ default: '30s', description: 'how long a remote registry may stay silent during a pull request before it counts as unreachable' }),
});
