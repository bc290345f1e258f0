// An app image that runs one busybox shell script: Debian's static busybox as the only layer and
// `/bin/busybox sh -c SCRIPT` as the entrypoint, for tests that need a workload doing one thing
// (spin on the CPU, write to the console) rather than the canary app.
import { busyboxLayer } from '@shellwego/testing/images/busybox';
import { ociArchive } from '@shellwego/testing/images/image-archive';
import { layerTar } from '@shellwego/testing/images/layer-tar';

export async function scriptImageArchive(tag: string, script: string): Promise<Buffer> {
  const layer = await layerTar(busyboxLayer());
  const { archive } = await ociArchive(
    { layers: [layer], runtime: { Entrypoint: ['/bin/busybox', 'sh', '-c', script], Env: ['PATH=/bin'], WorkingDir: '/' } },
    { tag },
  );
  return archive;
}
