// The host side's GuestService transport: gRPC over HTTP/2 cleartext on whatever byte channel
// reaches the guest. Only the connector knows the channel kind.
import type { Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { clientInterceptors } from '../rpc/client-interceptors.js';
import type { GuestClientChannel } from './channel.js';
import { connectFirecrackerVsock } from './connect-firecracker-vsock.js';
import { connectQemuSerial } from './connect-qemu-serial.js';
import { connectUnix } from './connect-unix.js';
import { type GuestConnector, GuestSessionManager } from './guest-session-manager.js';

export interface GuestTransportOptions {
  /** How long one connect may wait for the guest (booting VMs answer late). Default 60 s. */
  readonly connectTimeoutMs?: number;
  /** Default deadline for calls without their own. */
  readonly defaultTimeoutMs?: number;
  /** Largest message accepted. Default 16 MiB. */
  readonly readMaxBytes?: number;
}

export interface GuestTransport extends Transport {
  /** Closes the channel connection; calls in flight fail, the next call reconnects. */
  close(): void;
}

// HTTP/2 needs an authority; nothing resolves it, the connector decides where bytes go.
const AUTHORITY = 'http://guest-agent.invalid';

export function createGuestTransport(channel: GuestClientChannel, options: GuestTransportOptions = {}): GuestTransport {
  const sessionManager = new GuestSessionManager(AUTHORITY, guestConnector(channel, options));
  const transport = createGrpcTransport({
    baseUrl: AUTHORITY,
    sessionManager,
    readMaxBytes: options.readMaxBytes ?? 16 * 1024 * 1024,
    // As over the network: with tracing set up, the guest continues the host's trace.
    interceptors: clientInterceptors(),
    ...(options.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
  });
  return {
    unary: transport.unary.bind(transport),
    stream: transport.stream.bind(transport),
    close: () => sessionManager.close(),
  };
}

export function guestConnector(channel: GuestClientChannel, options: GuestTransportOptions = {}): GuestConnector {
  const timeoutMs = options.connectTimeoutMs ?? 60_000;
  switch (channel.kind) {
    case 'unix':
      return (signal) => connectUnix(channel.path, signal);
    case 'qemu-serial':
      return (signal) => connectQemuSerial(channel.path, { timeoutMs, signal });
    case 'firecracker-vsock':
      return (signal) => connectFirecrackerVsock(channel.udsPath, channel.port, { timeoutMs, signal });
  }
}
