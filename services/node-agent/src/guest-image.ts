// What the VM drivers boot, from the agent's configuration: the guest agent bundle (the process
// driver runs it directly) and the guest image (kernel + initramfs with that bundle) for qemu
// and firecracker. The agent builds neither: `npm start` and the deployment provide them.
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestImage } from './drivers/index.js';

export function guestImageIn(dir: string): GuestImage {
  return { vmlinuxPath: join(dir, 'vmlinux'), vmlinuzPath: join(dir, 'vmlinuz'), initramfsPath: join(dir, 'initramfs.cpio.gz') };
}

/** The configured guest image, checked readable; an error that says how to get one otherwise. */
export async function configuredGuestImage(dir: string | undefined): Promise<GuestImage> {
  if (dir === undefined) {
    throw new Error('no guest image configured: build one with deploy/guest-image/build.sh and set SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR to its output');
  }
  const image = guestImageIn(dir);
  for (const file of [image.vmlinuxPath, image.vmlinuzPath, image.initramfsPath]) {
    await access(file, constants.R_OK).catch(() => {
      throw new Error(
        `guest image file ${file} is not readable; build the image with deploy/guest-image/build.sh and point SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR at its output`,
      );
    });
  }
  return image;
}
