// Waits until a freshly spawned process listens on its Unix socket, failing early when the
// process exits first.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmDriverError, type VmExit } from './types.js';

const RETRY_MS = 25;

export interface WaitForSocketOptions {
  readonly timeoutMs: number;
  /** The process that should open the socket; its exit ends the wait. */
  readonly exited: Promise<VmExit>;
  /** For messages, e.g. "the Firecracker API socket". */
  readonly what: string;
  /** Appended to failure messages (e.g. the process's log tail). */
  readonly diagnostics: () => string;
}

export async function waitForSocket(path: string, options: WaitForSocketOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exit: VmExit | undefined;
  void options.exited.then((e) => (exit = e));
  let lastError = 'not tried';
  for (;;) {
    const outcome = await tryConnect(path);
    if (outcome === 'ok') {
      return;
    }
    lastError = outcome;
    if (exit !== undefined) {
      throw new VmDriverError(
        'boot-failed',
        `the process exited (code ${exit.code}, signal ${exit.signal}) before ${options.what} ${path} accepted connections: ${options.diagnostics()}`,
      );
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new VmDriverError(
        'boot-failed',
        `${options.what} ${path} did not accept connections within ${options.timeoutMs} ms (${lastError}): ${options.diagnostics()}`,
      );
    }
    await Promise.race([options.exited, sleep(Math.min(RETRY_MS, left))]);
  }
}

function tryConnect(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve('ok');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
