import { defaultPorts, defineConfig, duration, integer, path, string } from '@shellwego/kit/config';
import { databaseSettings, grantVerifierSettings, serverSettings } from '@shellwego/kit/service';

const GIB = 1024 ** 3;

/** Settings of the registry process; env vars start with SHELLWEGO_REGISTRY_. */
export const registryConfig = defineConfig('SHELLWEGO_REGISTRY', {
  ...serverSettings('registry', defaultPorts.registry),
  ...databaseSettings('registry'),
  storeDir: path({
    default: '$SHELLWEGO_HOME/registry',
    description: 'blob store (blobs/sha256/<hex>) and rootfs cache (rootfs/<hex>.ext4); one file system, so publishing is an atomic link',
  }),
  ...grantVerifierSettings(),
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
