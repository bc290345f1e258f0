// Signal names as GuestService.Signal accepts them.
import { constants } from 'node:os';
import { WorkloadError } from './workload-error.js';

/** "SIGTERM", "TERM" or "sigterm" -> "SIGTERM"; anything the OS does not know is INVALID_ARGUMENT. */
export function parseSignal(name: string): NodeJS.Signals {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (!Object.hasOwn(constants.signals, full)) {
    throw new WorkloadError('invalid-argument', `unknown signal ${JSON.stringify(name)}; use a name such as SIGTERM, SIGINT, SIGHUP, SIGKILL`);
  }
  return full as NodeJS.Signals;
}
