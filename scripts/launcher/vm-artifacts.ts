// What the local node agent boots, built for `npm start`: the guest agent bundle, and on a host
// with QEMU the guest image (kernel + initramfs with that bundle) from deploy/guest-image/build.sh.
// Both builds are cached by their inputs; a value already in the environment is kept.
import { fileURLToPath } from 'node:url';
import { deployables } from '@shellwego/build';
import { findExecutable } from '@shellwego/kit/process';
import { execa } from 'execa';

const BUILD_SCRIPT = fileURLToPath(new URL('../../deploy/guest-image/build.sh', import.meta.url));
/** build.sh: a host capability is missing. */
const EXIT_MISSING_CAPABILITY = 3;

export interface VmArtifacts {
  readonly guestAgentBundle: string;
  /** Undefined when no image could be built here; the agent then runs the process driver. */
  readonly guestImageDir: string | undefined;
}

export async function prepareVmArtifacts(env: NodeJS.ProcessEnv, say: (line: string) => void, signal: AbortSignal): Promise<VmArtifacts> {
  const guestAgentBundle = env.SHELLWEGO_NODE_AGENT_GUEST_AGENT_BUNDLE ?? deployables['guest-agent'].outfile;
  const configured = env.SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR;
  if (configured !== undefined || findExecutable(env.SHELLWEGO_NODE_AGENT_QEMU_BINARY ?? 'qemu-system-x86_64', env) === undefined) {
    return { guestAgentBundle, guestImageDir: configured };
  }
  say('shellwego: preparing the guest image for real VMs (deploy/guest-image/build.sh; cached after the first run)');
  // Niced: hashing the inputs takes a while even on a cache hit, beside the services starting.
  const build = await execa('nice', ['-n', '10', 'bash', BUILD_SCRIPT, '--agent', guestAgentBundle], { reject: false, stdin: 'ignore', cancelSignal: signal });
  if (build.exitCode === 0) return { guestAgentBundle, guestImageDir: build.stdout.trim().split('\n').at(-1) };
  if (signal.aborted) return { guestAgentBundle, guestImageDir: undefined };
  const last = build.stderr.trim().split('\n').at(-1) ?? '';
  const hint = build.exitCode === EXIT_MISSING_CAPABILITY ? ' (install the host packages: deploy/setup-host.sh)' : '';
  say(`shellwego: no guest image (build.sh exit ${build.exitCode}: ${last}${hint}); the node agent will use the process driver`);
  return { guestAgentBundle, guestImageDir: undefined };
}
