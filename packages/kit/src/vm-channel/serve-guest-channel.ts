// Guest side: serves Connect/gRPC routes over HTTP/2 cleartext on a Unix socket or a
// virtio-serial character device. The routes never learn which.

import { chmod, lstat, unlink } from 'node:fs/promises';
import * as http2 from 'node:http2';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { serverTracingInterceptor } from '../tracing/rpc-tracing.js';
import type { ByteDevice } from './byte-device.js';
import { openCharDevice } from './byte-device.js';
import { describeServerChannel, type GuestServerChannel } from './channel.js';
import { type DeviceLinkOptions, startDeviceLink } from './device-session-link.js';

export interface GuestChannelServer {
  /** e.g. "unix:/run/guest-agent.sock". */
  readonly description: string;
  close(): Promise<void>;
}

export interface ServeGuestChannelOptions {
  /** Channel state changes (connects, disconnects); never payload. */
  readonly onNotice?: (message: string, fields?: Record<string, unknown>) => void;
  /** Opens the character device; tests pass a stand-in. Default: openCharDevice. */
  readonly openDevice?: (path: string) => Promise<ByteDevice>;
  readonly deviceLink?: DeviceLinkOptions;
}

export async function serveGuestChannel(
  routes: (router: ConnectRouter) => void,
  channel: GuestServerChannel,
  options: ServeGuestChannelOptions = {},
): Promise<GuestChannelServer> {
  const server = http2.createServer({}, connectNodeAdapter({ routes, interceptors: [serverTracingInterceptor()] }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // A broken peer must not take the agent down; the session just ends.
    session.on('error', (err: NodeJS.ErrnoException) => options.onNotice?.('HTTP/2 session error', { code: err.code ?? 'unknown' }));
  });
  const closeSessions = (): void => {
    for (const session of sessions) {
      session.destroy();
    }
  };
  const description = describeServerChannel(channel);

  if (channel.kind === 'unix') {
    await removeStaleSocket(channel.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(channel.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Only the host side (same user, or root through the vsock bridge) may talk to the agent.
    await chmod(channel.path, 0o600);
    return {
      description,
      async close() {
        closeSessions();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  const device = await (options.openDevice ?? openCharDevice)(channel.path);
  const link = startDeviceLink(
    device,
    {
      onSession: (duplex) => server.emit('connection', duplex),
      ...(options.onNotice ? { onNotice: options.onNotice } : {}),
    },
    options.deviceLink,
  );
  return {
    description,
    async close() {
      await link.close();
      closeSessions();
      await device.close();
    },
  };
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const info = await lstat(path);
    if (!info.isSocket()) {
      throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    }
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw err;
    }
  }
}
