import type { Server } from 'node:net';

/** What one client may hold open on a server. */
export interface ConnectionLimits {
  /** Calls (HTTP/2 streams) open at once on one connection; more are refused with REFUSED_STREAM, which gRPC clients queue or retry. */
  readonly maxConcurrentStreams: number;
  /** Connections open at once from one IP address; more are closed before the TLS handshake. */
  readonly maxConnectionsPerPeer: number;
  /** Largest request header list (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, names and values plus 32 bytes each); more resets the stream. */
  readonly maxHeaderListBytes: number;
  /** How often refusals to callers without a usable certificate are logged, as one line of counts. */
  readonly refusalLogIntervalMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConcurrentStreams: 100,
  maxConnectionsPerPeer: 100,
  maxHeaderListBytes: 16 * 1024,
  refusalLogIntervalMs: 60_000,
};

/**
 * Closes a TCP connection at once when its address already holds `max` open ones, before
 * any TLS work is spent on it. Listens first, ahead of the TLS server's own listener.
 */
export function limitConnectionsPerPeer(server: Server, max: number, onRefused: (address: string) => void): void {
  const open = new Map<string, number>();
  server.prependListener('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const count = open.get(address) ?? 0;
    if (count >= max) {
      onRefused(address);
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
