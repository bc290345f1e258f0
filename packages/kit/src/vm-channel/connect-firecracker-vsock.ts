// Host side of Firecracker's hybrid vsock: connect to the device's uds_path, send
// "CONNECT <port>\n", read "OK <host port>\n"; from then on the socket is the guest's vsock
// connection. Firecracker closes the socket when nothing listens on the port in the guest
// (still booting), so attempts repeat with backoff until the deadline.

import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, ConnectError } from '@connectrpc/connect';

export interface FirecrackerVsockConnectOptions {
  /** Give up after this long. Default 60 s. */
  readonly timeoutMs?: number;
  /** First retry delay; doubles up to maxRetryDelayMs. Default 10 ms. */
  readonly retryDelayMs?: number;
  /** Default 250 ms. */
  readonly maxRetryDelayMs?: number;
  /** How long one attempt waits for the reply to CONNECT before trying again. Default 2 s. */
  readonly attemptTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

// "OK " + a u32 + "\n" fits easily; anything longer is not Firecracker.
const MAX_REPLY_BYTES = 32;

export async function connectFirecrackerVsock(udsPath: string, port: number, options: FirecrackerVsockConnectOptions = {}): Promise<Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    throw new ConnectError(`vsock port ${port} is not a 32-bit unsigned integer`, Code.InvalidArgument);
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let delay = options.retryDelayMs ?? 10;
  let lastError = 'no attempt made';
  for (;;) {
    options.signal?.throwIfAborted();
    const attemptDeadline = Math.min(deadline, Date.now() + (options.attemptTimeoutMs ?? 2000));
    const outcome = await attempt(udsPath, port, attemptDeadline, options.signal);
    if (typeof outcome !== 'string') {
      return outcome;
    }
    lastError = outcome;
    const left = deadline - Date.now();
    if (left <= 0) {
      break;
    }
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, options.maxRetryDelayMs ?? 250);
  }
  throw new ConnectError(
    `guest agent not reachable over Firecracker vsock ${udsPath} port ${port} within ${timeoutMs} ms (last attempt: ${lastError}); is the VM up and the agent listening?`,
    Code.Unavailable,
  );
}

function attempt(udsPath: string, port: number, deadline: number, signal: AbortSignal | undefined): Promise<Socket | string> {
  return new Promise((resolve) => {
    const socket = connect(udsPath);
    let reply = Buffer.alloc(0);
    const finish = (outcome: Socket | string): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      if (typeof outcome === 'string') {
        socket.destroy();
      }
      resolve(outcome);
    };
    const onConnect = (): void => {
      socket.write(`CONNECT ${port}\n`);
    };
    const onData = (chunk: Buffer): void => {
      reply = Buffer.concat([reply, chunk]);
      const newline = reply.indexOf(0x0a);
      if (newline < 0) {
        if (reply.length > MAX_REPLY_BYTES) {
          finish('unexpected reply to CONNECT (no line)');
        }
        return;
      }
      const line = reply.toString('latin1', 0, newline);
      if (!/^OK \d+$/.test(line)) {
        finish(`unexpected reply to CONNECT: ${JSON.stringify(line.slice(0, MAX_REPLY_BYTES))}`);
        return;
      }
      socket.pause();
      const rest = reply.subarray(newline + 1);
      if (rest.length > 0) {
        socket.unshift(rest);
      }
      finish(socket);
    };
    const onClose = (): void => finish('connection closed before OK (nothing listening on the port yet?)');
    const onError = (err: NodeJS.ErrnoException): void => finish(err.code ?? err.message);
    const onAbort = (): void => finish('aborted');
    const timer = setTimeout(() => finish('no reply to CONNECT'), Math.max(0, deadline - Date.now()));
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
