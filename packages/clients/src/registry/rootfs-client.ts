import type { Http2Session } from 'node:http2';
import { type Client, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { expectedService, mtlsSessionOptions, type TlsMaterial } from '@shellwego/kit/rpc';

/** Receive windows: a whole 1 MiB chunk and more in flight, so the sender never waits for a WINDOW_UPDATE round trip. */
const STREAM_WINDOW = 8 * 1024 * 1024;
const SESSION_WINDOW = 32 * 1024 * 1024;
/** Lets the server send a chunk in a few large frames instead of 64 frames of 16 KiB. */
const MAX_FRAME = 1024 * 1024;

/** Raises the connection-level receive window of every session it opens (Node leaves it at 64 KiB). */
class WideWindowSessionManager extends Http2SessionManager {
  private readonly widened = new WeakSet<Http2Session>();

  override async request(...args: Parameters<Http2SessionManager['request']>): ReturnType<Http2SessionManager['request']> {
    const stream = await super.request(...args);
    const session = stream.session;
    if (session && !this.widened.has(session)) {
      this.widened.add(session);
      session.setLocalWindowSize(SESSION_WINDOW);
    }
    return stream;
  }
}

/**
 * A RegistryService client tuned for FetchRootfs: mTLS to the registry's own identity like every client,
 * no response compression (ext4 chunks are big and gzip costs more than it
 * saves), large HTTP/2 windows and frames. Use it with fetchRootfsToFile.
 */
export function createRootfsClient(options: { baseUrl: string; tls: TlsMaterial }): Client<typeof RegistryService> {
  const nodeOptions = {
    ...mtlsSessionOptions(options.tls, expectedService('registry')),
    settings: { initialWindowSize: STREAM_WINDOW, maxFrameSize: MAX_FRAME },
  };
  return createClient(
    RegistryService,
    createGrpcTransport({
      baseUrl: options.baseUrl,
      readMaxBytes: 8 * 1024 * 1024,
      acceptCompression: [],
      sessionManager: new WideWindowSessionManager(options.baseUrl, {}, nodeOptions),
    }),
  );
}
