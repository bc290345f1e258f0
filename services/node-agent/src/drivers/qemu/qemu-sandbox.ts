// QEMU's seccomp sandbox (-sandbox on): whether this QEMU binary has it is found out once, by
// running the binary with the sandbox options and "-machine help". QEMU installs the filter
// before it handles help options, so exit 0 proves the options parse, the filter loads on this
// kernel and QEMU still works under it; a QEMU built without seccomp exits 1 saying so.
import { execa } from 'execa';
import { vmmEnvironment } from '../vmm-environment.js';

/**
 * Seccomp on, and every optional restriction too: no obsolete system calls, no setuid or
 * privilege changes, no fork/exec (the VM never needs a helper: TAP devices are opened with
 * script=no), no scheduler or CPU-affinity changes.
 */
export const SANDBOX_OPTIONS = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

export type SandboxSupport = { readonly supported: true } | { readonly supported: false; readonly why: string };

const PROBE_TIMEOUT_MS = 30_000;

export async function probeSandbox(binary: string): Promise<SandboxSupport> {
  const probe = await execa(binary, ['-sandbox', SANDBOX_OPTIONS, '-machine', 'help'], {
    env: vmmEnvironment(),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: PROBE_TIMEOUT_MS,
  });
  if (probe.exitCode === 0) return { supported: true };
  const said = (probe.stderr || probe.stdout).trim().split('\n').at(-1) ?? '';
  return { supported: false, why: `${binary} -sandbox ${SANDBOX_OPTIONS} -machine help failed (${probe.shortMessage}${said === '' ? '' : `: ${said}`})` };
}
