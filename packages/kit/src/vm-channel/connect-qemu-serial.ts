// Host side of a virtio-serial channel: connects to QEMU's chardev socket and runs the HELLO /
// READY handshake (serial-handshake.ts) before HTTP/2 may start.

import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, ConnectError } from '@connectrpc/connect';
import { helloLine, newNonce, READY_PREFIX, scanLine } from './serial-handshake.js';

export interface QemuSerialConnectOptions {
  /** Give up after this long (the guest may still be booting). Default 60 s. */
  readonly timeoutMs?: number;
  /** First HELLO resend delay; doubles up to 2 s. Default 250 ms. */
  readonly helloRetryMs?: number;
  readonly signal?: AbortSignal;
}

export async function connectQemuSerial(path: string, options: QemuSerialConnectOptions = {}): Promise<Socket> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError = 'no answer';
  let retryDelay = 20;
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    let socket: Socket;
    try {
      socket = await openSocket(path);
    } catch (err) {
      // QEMU not started yet, or its chardev socket not created yet.
      lastError = err instanceof Error ? err.message : String(err);
      await sleep(Math.min(retryDelay, Math.max(0, deadline - Date.now())));
      retryDelay = Math.min(retryDelay * 2, 500);
      continue;
    }
    const outcome = await handshake(socket, deadline, options);
    if (outcome === 'ready') {
      return socket;
    }
    socket.destroy();
    lastError = outcome;
  }
  throw new ConnectError(
    `guest agent did not answer on the virtio-serial channel ${path} within ${options.timeoutMs ?? 60_000} ms (${lastError}); is the VM up and the agent running?`,
    Code.Unavailable,
  );
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

// Resolves 'ready' with the socket paused and any bytes after the READY line unshifted, or a
// reason the attempt failed.
function handshake(socket: Socket, deadline: number, options: QemuSerialConnectOptions): Promise<string> {
  return new Promise((resolve) => {
    const sent: string[] = [];
    let answered = false;
    let buffered: Buffer = Buffer.alloc(0);
    let resendDelay = options.helloRetryMs ?? 250;
    let resendTimer: NodeJS.Timeout | undefined;

    const sendHello = (): void => {
      const nonce = newNonce();
      sent.push(nonce);
      socket.write(helloLine(nonce));
      // Resending covers a HELLO swallowed by a guest session that had not noticed the
      // previous host leaving; every HELLO gets its own READY, so resends are harmless.
      resendTimer = setTimeout(() => {
        if (!answered) {
          resendDelay = Math.min(resendDelay * 2, 2000);
          sendHello();
        }
      }, resendDelay);
    };

    const finish = (outcome: string): void => {
      clearTimeout(resendTimer);
      clearTimeout(deadlineTimer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        const scan = scanLine(buffered, READY_PREFIX);
        if (scan.kind === 'none') {
          buffered = Buffer.alloc(0);
          return;
        }
        if (scan.kind === 'partial') {
          buffered = buffered.subarray(scan.start);
          return;
        }
        buffered = buffered.subarray(scan.end);
        if (!sent.includes(scan.nonce)) {
          continue; // a READY meant for an earlier host connection
        }
        answered = true;
        clearTimeout(resendTimer);
        if (scan.nonce === sent[sent.length - 1]) {
          socket.pause();
          if (buffered.length > 0) {
            socket.unshift(buffered);
          }
          finish('ready');
          return;
        }
      }
    };
    const onClose = (): void => finish('the channel socket closed during the handshake');
    const onError = (err: Error): void => finish(err.message);
    const onAbort = (): void => finish('aborted');
    const deadlineTimer = setTimeout(() => finish('no READY from the guest agent'), Math.max(0, deadline - Date.now()));

    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    sendHello();
  });
}
