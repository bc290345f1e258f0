import { existsSync } from 'node:fs';
import { findExecutable } from '@shellwego/kit/process';

/** What this host lacks to boot a real VM under the qemu driver (deploy/setup-host.sh installs it), or undefined. */
export function missingVmHost(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `a Linux x86-64 host (this is ${process.platform}/${process.arch})`;
  const lacking = [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['mkfs.ext4', 'e2fsprogs'],
  ]
    .filter(([cmd]) => findExecutable(cmd ?? '') === undefined && findExecutable(`/usr/sbin/${cmd ?? ''}`) === undefined)
    .map(([cmd, pkg]) => `${cmd} (Debian package ${pkg})`);
  if (!existsSync('/bin/busybox')) lacking.push('/bin/busybox (Debian package busybox-static)');
  return lacking.length > 0 ? `missing host capability: ${lacking.join('; ')}; deploy/setup-host.sh installs them` : undefined;
}
