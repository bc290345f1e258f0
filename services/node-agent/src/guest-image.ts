// What the VM drivers boot: the guest agent bundle (the process driver runs it directly) and the
// guest image (kernel + initramfs with that bundle) for qemu and firecracker. Both are built on
// demand in a development checkout when no path is configured; builds are cached.
import { access, constants } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Logger } from '@shellwego/kit/log';
import type { GuestImage } from './drivers/index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BUILD_SCRIPT = join(repo, 'deploy/guest-image/build.sh');
/** build.sh: a host capability is missing. */
const EXIT_MISSING_CAPABILITY = 3;

/** The configured bundle, or the checkout's own, (re)built when its sources changed. */
export async function guestAgentBundle(configured: string | undefined, log: Logger): Promise<string> {
  if (configured !== undefined) return configured;
  const { buildGuestAgent } = await import('@shellwego/guest-agent/build');
  const built = await buildGuestAgent();
  if (built.rebuilt) log.info({ bundle: built.outfile }, 'guest agent bundle built');
  return built.outfile;
}

export function guestImageIn(dir: string): GuestImage {
  return { vmlinuxPath: join(dir, 'vmlinux'), vmlinuzPath: join(dir, 'vmlinuz'), initramfsPath: join(dir, 'initramfs.cpio.gz') };
}

/**
 * The configured guest image dir, or deploy/guest-image/build.sh's output (cached by content
 * hash). An abort (the agent shutting down) ends a build in progress.
 */
export async function resolveGuestImage(configuredDir: string | undefined, bundle: string, log: Logger, signal: AbortSignal): Promise<GuestImage> {
  if (configuredDir !== undefined) {
    const image = guestImageIn(configuredDir);
    for (const file of [image.vmlinuxPath, image.vmlinuzPath, image.initramfsPath]) {
      await access(file, constants.R_OK).catch(() => {
        throw new Error(`guest image file ${file} is not readable; build the image with deploy/guest-image/build.sh and point SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR at its output`);
      });
    }
    return image;
  }
  const started = performance.now();
  // cleanup: false keeps execa's signal-exit hook out: with it, a SIGINT during the build would
  // be re-raised after runService's one-shot handler ran, killing the agent mid-shutdown. The
  // build (hashing ~150 MB of inputs even on a cache hit) runs niced: it is background work
  // beside whatever else starts with the agent.
  const build = await execa('nice', ['-n', '10', 'bash', BUILD_SCRIPT, '--agent', bundle], { reject: false, stdin: 'ignore', cleanup: false, cancelSignal: signal });
  signal.throwIfAborted();
  if (build.exitCode !== 0) {
    const last = build.stderr.trim().split('\n').at(-1) ?? '';
    const hint = build.exitCode === EXIT_MISSING_CAPABILITY ? ' (install the host packages: deploy/setup-host.sh)' : '';
    throw new Error(`deploy/guest-image/build.sh failed with exit code ${build.exitCode}: ${last}${hint}`);
  }
  const dir = build.stdout.trim().split('\n').at(-1) ?? '';
  log.info({ dir, ms: Math.round(performance.now() - started) }, 'guest image ready');
  return guestImageIn(dir);
}
