// The app image the end-to-end tests build: Debian's static busybox plus a script that prints
// the sha256 of $CANARY and then serves a TCP health port. The script is the image's entrypoint
// (`/bin/busybox sh -c ...`, absolute paths only), so it runs the same in a VM (chrooted into
// the image) and under the process driver (on the host, which has /bin/busybox too).
import { createHash } from 'node:crypto';
import { busyboxLayer } from '@shellwego/testing/images/busybox';
import { ociArchive } from '@shellwego/testing/images/image-archive';
import { layerTar } from '@shellwego/testing/images/layer-tar';

export const CANARY_SCRIPT = [
  `h=$(printf %s "$CANARY" | /bin/busybox sha256sum | /bin/busybox cut -d' ' -f1)`,
  'echo "canary-sha256=$h"',
  'echo "listening on $PORT" >&2',
  'exec /bin/busybox nc -ll -p "$PORT" -e /bin/busybox true',
].join('; ');

/** An OCI archive of the canary app, tagged `tag`; `env` entries ("K=V") make a distinct image. */
export async function canaryImageArchive(tag: string, env: readonly string[] = []): Promise<Buffer> {
  const layer = await layerTar(busyboxLayer());
  const { archive } = await ociArchive(
    { layers: [layer], runtime: { Entrypoint: ['/bin/busybox', 'sh', '-c', CANARY_SCRIPT], Env: ['PATH=/bin', 'PORT=8080', ...env], WorkingDir: '/' } },
    { tag },
  );
  return archive;
}

/** What the workload prints for a canary value. */
export function canaryLine(canary: Uint8Array): string {
  return `canary-sha256=${createHash('sha256').update(canary).digest('hex')}`;
}
