// Words for why a VM ended, for FAILED reasons: its exit status and the end of its console (the
// kernel, init and guest agent log; never workload output, never a secret).
import type { VmExit, VmHandle } from '../drivers/index.js';
import { logTail } from '../drivers/vmm-process.js';

const TAIL_BYTES = 600;

export function describeVmExit(exit: VmExit): string {
  if (exit.code !== null) return `exit code ${exit.code}`;
  if (exit.signal !== null) return `signal ${exit.signal}`;
  return 'it is gone';
}

/** "; console: <last lines, joined with ' | '>", or "" when the console is empty. */
export function consoleTail(vm: Pick<VmHandle, 'consoleLogPath'>): string {
  const tail = logTail(vm.consoleLogPath, TAIL_BYTES * 2)
    .split('\n')
    .map((line) => line.replace(/\r/g, '').trim())
    .filter((line) => line !== '')
    .join(' | ');
  return tail === '' ? '' : `; console: ${tail.slice(-TAIL_BYTES)}`;
}
