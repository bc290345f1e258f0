// Tells a working KVM from a broken one by the serial console: a working KVM prints the kernel
// banner within a few seconds of SeaBIOS handing over ("Booting from ROM"); a broken one (e.g.
// nested KVM that cannot run the stock kernel) makes QEMU exit, or hangs before the banner.

import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmExit } from '../types.js';

export interface KernelStartTimeouts {
  /** From QEMU start to SeaBIOS's "Booting from ROM". Default 10 s. */
  readonly biosTimeoutMs?: number;
  /** From "Booting from ROM" to "Linux version". Default 5 s. */
  readonly kernelTimeoutMs?: number;
}

export type KernelStart = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly reason: string };

const BIOS_DONE = 'Booting from ROM';
const KERNEL_BANNER = 'Linux version';
// fs.watch can miss appends on some filesystems: re-read at least this often.
const RECHECK_MS = 250;

export async function watchKernelStart(consoleLog: string, exited: Promise<VmExit>, timeouts: KernelStartTimeouts = {}): Promise<KernelStart> {
  const started = Date.now();
  const biosTimeoutMs = timeouts.biosTimeoutMs ?? 10_000;
  const kernelTimeoutMs = timeouts.kernelTimeoutMs ?? 5_000;
  let deadline = started + biosTimeoutMs;
  let biosDone = false;
  let exit: VmExit | undefined;
  void exited.then((e) => (exit = e));
  let wake: () => void = () => undefined;
  const watcher = watch(consoleLog, () => wake());
  watcher.on('error', () => undefined);
  try {
    for (;;) {
      const text = await readFile(consoleLog, 'latin1').catch(() => '');
      if (text.includes(KERNEL_BANNER)) {
        return { ok: true, ms: Date.now() - started };
      }
      if (exit !== undefined) {
        return { ok: false, reason: `qemu exited (code ${exit.code}, signal ${exit.signal}) before the kernel printed anything` };
      }
      if (!biosDone && text.includes(BIOS_DONE)) {
        biosDone = true;
        deadline = Date.now() + kernelTimeoutMs;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        return {
          ok: false,
          reason: biosDone
            ? `no kernel output ${kernelTimeoutMs / 1000} s after the BIOS handed over (the kernel hangs under this host's KVM)`
            : `no BIOS output within ${biosTimeoutMs / 1000} s`,
        };
      }
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), exited, sleep(Math.min(RECHECK_MS, left))]);
    }
  } finally {
    watcher.close();
  }
}
