// Opens a Unix socket connection, failing with a ConnectError a caller can act on.

import { connect, type Socket } from 'node:net';
import { Code, ConnectError } from '@connectrpc/connect';

export function connectUnix(path: string, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onAbort = (): void => {
      socket.destroy();
      reject(new ConnectError(`connecting to ${path} was cancelled`, Code.Canceled));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: NodeJS.ErrnoException): void => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new ConnectError(
          `guest agent socket ${path} is not reachable (${err.code ?? err.message}); is the agent running?`,
          Code.Unavailable,
          undefined,
          undefined,
          err,
        ),
      );
    };
    socket.once('error', onError);
  });
}
