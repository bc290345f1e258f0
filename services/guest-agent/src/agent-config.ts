// The agent's settings, from flags, then the environment, then the kernel command line (when
// it runs inside a shellwego guest image).

import type { GuestServerChannel } from '@shellwego/kit/vm-channel';
import { Command, InvalidArgumentError } from 'commander';

export interface AgentConfig {
  readonly channel: GuestServerChannel;
  readonly stateDir: string;
  readonly busybox: string;
  /** Root filesystem device for a Run that names none; undefined: process mode. */
  readonly defaultRootfsDevice: string | undefined;
  readonly gracePeriodMs: number;
  readonly outputBufferBytes: number;
  readonly logLevel: string | undefined;
}

export interface ConfigSources {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** The kernel command line ("" outside a VM). */
  readonly cmdline: string;
  readonly fileExists: (path: string) => boolean;
}

/** Written by deploy/guest-image/build.sh: its presence means "inside a shellwego guest". */
export const GUEST_IMAGE_MARKER = '/etc/shellwego-image.json';
export const DEFAULT_VM_ROOTFS_DEVICE = '/dev/vda';

export function parseChannelSpec(spec: string): GuestServerChannel {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  if (rest !== '') {
    switch (kind) {
      case 'unix':
      case 'unix-listen':
        return { kind: 'unix', path: rest };
      case 'char-device':
        return { kind: 'char-device', path: rest };
      case 'virtio-serial':
        return { kind: 'char-device', path: rest.startsWith('/') ? rest : `/dev/virtio-ports/${rest}` };
      case 'vsock':
        throw new InvalidArgumentError(
          `channel "${spec}": Node has no AF_VSOCK; bridge the port to a Unix socket (socat VSOCK-LISTEN:<port>,fork UNIX-CONNECT:<socket>, as the guest image's init does) and pass unix:<socket>`,
        );
    }
  }
  throw new InvalidArgumentError(
    `channel "${spec}" is not one of unix:<socket>, unix-listen:<socket>, char-device:<path>, virtio-serial:<port name or /dev path>`,
  );
}

export function cmdlineValue(cmdline: string, key: string): string | undefined {
  for (const word of cmdline.trim().split(/\s+/)) {
    if (word.startsWith(`${key}=`)) {
      return word.slice(key.length + 1);
    }
  }
  return undefined;
}

/**
 * Parses the settings. For --help and bad flags commander prints its message and this throws a
 * CommanderError carrying the exit code.
 */
export function loadAgentConfig(sources: ConfigSources): AgentConfig {
  const program = new Command('guest-agent')
    .description('shellwego guest agent: serves GuestService on the VM channel and runs the workload')
    .option(
      '--channel <spec>',
      'where to serve: unix:<socket> | unix-listen:<socket> | char-device:<path> | virtio-serial:<name or /dev path> (env SHELLWEGO_CHANNEL, kernel cmdline shellwego.channel=)',
    )
    .option(
      '--rootfs-device <device>',
      `app root filesystem for a Run that names none (env SHELLWEGO_ROOTFS_DEVICE, cmdline shellwego.rootfs=; default ${DEFAULT_VM_ROOTFS_DEVICE} inside a guest image, else none: process mode)`,
    )
    .option('--state-dir <dir>', 'where the app root filesystem and its overlay are mounted (VM mode)', '/run/shellwego')
    .option('--busybox <path>', 'busybox used to enter the workload root (env SHELLWEGO_BUSYBOX; default /bin/busybox, else busybox on PATH)')
    .option('--grace-period-ms <ms>', 'SIGTERM to SIGKILL grace when restarting or shutting down', positiveInt, 10_000)
    .option('--output-buffer-bytes <bytes>', 'workload output kept for late Wait callers', positiveInt, 1024 * 1024)
    .option('--log-level <level>', 'pino level (env SHELLWEGO_LOG_LEVEL)')
    .exitOverride()
    .parse([...sources.argv], { from: 'user' });
  const flags = program.opts<{
    channel?: string;
    rootfsDevice?: string;
    stateDir: string;
    busybox?: string;
    gracePeriodMs: number;
    outputBufferBytes: number;
    logLevel?: string;
  }>();

  const channelSpec = flags.channel ?? nonEmpty(sources.env.SHELLWEGO_CHANNEL) ?? cmdlineValue(sources.cmdline, 'shellwego.channel');
  if (channelSpec === undefined) {
    throw new InvalidArgumentError('no channel: pass --channel (or set SHELLWEGO_CHANNEL, or shellwego.channel= on the kernel command line)');
  }
  const inGuestImage = sources.fileExists(GUEST_IMAGE_MARKER);
  return {
    channel: parseChannelSpec(channelSpec),
    stateDir: flags.stateDir,
    busybox: flags.busybox ?? nonEmpty(sources.env.SHELLWEGO_BUSYBOX) ?? (sources.fileExists('/bin/busybox') ? '/bin/busybox' : 'busybox'),
    defaultRootfsDevice:
      flags.rootfsDevice ??
      nonEmpty(sources.env.SHELLWEGO_ROOTFS_DEVICE) ??
      cmdlineValue(sources.cmdline, 'shellwego.rootfs') ??
      (inGuestImage ? DEFAULT_VM_ROOTFS_DEVICE : undefined),
    gracePeriodMs: flags.gracePeriodMs,
    outputBufferBytes: flags.outputBufferBytes,
    logLevel: flags.logLevel,
  };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  }
  return n;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
