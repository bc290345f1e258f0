import { setMaxListeners } from 'node:events';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, type ConnectRouter, createContextValues, type Interceptor, type ServiceImpl } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { Health } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { ServerReflection as ReflectionV1 } from '@shellwego/contracts/grpc/reflection/v1/reflection_pb';
import { ServerReflection as ReflectionV1alpha } from '@shellwego/contracts/grpc/reflection/v1alpha/reflection_pb';
import type { Logger } from 'pino';
import { callerKey, describeIdentity, peerAddressKey, peerCertificateKey, type RefusalListener } from '../auth/index.js';
import { peerCertificateOf } from '../pki/peer-certificate.js';
import { RevocationList } from '../pki/revocation-list.js';
import { TrustBundle } from '../pki/trust-bundle.js';
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, limitConnectionsPerPeer } from './connection-limits.js';
import { endUnreadRequests } from './end-unread-requests.js';
import { conformGrpcStatus } from './grpc-status-headers.js';
import { type GateRefusal, headerGate } from './header-gate.js';
import { HealthStatus, healthService, ServingStatus } from './health-service.js';
import { ReflectionIndex, reflectionServiceV1, reflectionServiceV1alpha } from './reflection-service.js';
import { RefusalTally } from './refusal-tally.js';
import { refuseNulStrings } from './refuse-nul-strings.js';
import { codeName, requestLogInterceptor } from './request-log-interceptor.js';

/** A service descriptor with its (possibly partial) implementation. */
export interface ServiceRegistration {
  readonly service: DescService;
  readonly register: (router: ConnectRouter) => void;
}

/**
 * Pairs a generated service with its implementation. Methods left out answer
 * UNIMPLEMENTED, so a service can serve its whole contract while it grows.
 */
export function implement<S extends DescService>(service: S, implementation: Partial<ServiceImpl<S>>): ServiceRegistration {
  return { service, register: (router) => router.service(service, implementation) };
}

export interface TlsMaterial {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ServeOptions {
  /** The process name, for logs ("secrets"). */
  readonly name: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly services: readonly ServiceRegistration[];
  readonly logger: Logger;
  readonly revoked?: RevocationList;
  /** Which CA may sign which kind of principal; default the bundle `tls.caPem`, read once. */
  readonly trust?: TrustBundle;
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED. Default 4 MiB; from callers without a certificate at most 64 KiB. */
  readonly readMaxBytes?: number;
  /** Largest response message sent. Default 4 MiB. */
  readonly writeMaxBytes?: number;
  /** How long shutdown waits for in-flight calls before cancelling them. Default 10 s. */
  readonly drainTimeoutMs?: number;
  /**
   * Hears of every call refused to a caller with a verified certificate (e.g. to audit it);
   * the caller gets its answer once this settles. Refusals to callers without a usable
   * certificate are only counted (`countRefused`) and logged in aggregate.
   */
  readonly onRefused?: RefusalListener;
  /** Run around every admitted RPC, outermost first, before the request log. */
  readonly interceptors?: readonly Interceptor[];
  /** Counts each call refused from its headers, which never reaches `interceptors` (the RPC metrics' hook). */
  readonly countRefused?: (method: DescMethod, code: Code, seconds: number) => void;
  /** Per-connection and per-peer limits; each defaults to `DEFAULT_CONNECTION_LIMITS`. */
  readonly limits?: Partial<ConnectionLimits>;
  /**
   * Whether gzip and brotli are offered (default true): responses of 1 KiB or more are then
   * compressed for clients that accept it. Off, every message is sent and accepted as is; the
   * secrets service turns it off so values never pass through zlib's buffers, which nothing wipes.
   */
  readonly compression?: boolean;
}

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  readonly health: HealthStatus;
  /** Aborted when shutdown begins; long-lived streams end on it. */
  readonly shuttingDown: AbortSignal;
  close(): Promise<void>;
}

const mib = 1024 * 1024;

/** Largest request message from a caller without a certificate (a JoinNode request is a token, a CSR and labels). */
const ANONYMOUS_READ_MAX_BYTES = 64 * 1024;

/**
 * Serves Connect/gRPC services on one HTTP/2 TLS listener that requests and
 * verifies client certificates, plus grpc.health.v1 and server reflection.
 * Authorization is enforced per RPC from the contract's access option.
 *
 * The TLS layer requests a certificate but lets the handshake finish without
 * one, so a missing, expired, foreign or revoked certificate gets a gRPC
 * UNAUTHENTICATED with a reason instead of an opaque TLS alert. Every call is
 * authorized on its headers before its body is read (`headerGate`); only the
 * one RPC whose contract admits anonymous callers (JoinNode) reads a body
 * from a caller without a certificate.
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const logger = options.logger;
  const health = new HealthStatus();
  const shutdown = new AbortController();
  const cancelInFlight = new AbortController();
  // Connect adds a listener per in-flight call to this shared signal.
  setMaxListeners(0, cancelInFlight.signal);
  const revoked = options.revoked ?? RevocationList.empty();
  const trust = options.trust ?? TrustBundle.parse(options.tls.caPem);
  const served = options.services.map((s) => s.service);
  const routed = [...served, Health, ReflectionV1, ReflectionV1alpha];
  const reflection = new ReflectionIndex(routed);
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.limits };
  const tally = new RefusalTally(logger, limits.refusalLogIntervalMs);
  const refused = (refusal: GateRefusal): Promise<void> | undefined => {
    const { method, caller, error } = refusal;
    const rpc = `${method.parent.typeName}/${method.name}`;
    options.countRefused?.(method, error.code, refusal.seconds);
    if (caller.kind === 'anonymous') {
      tally.record(`${rpc} ${codeName(error.code)}`, refusal.peerAddress, error.rawMessage);
      return undefined;
    }
    // A verified principal is accountable: its refusals are logged (and audited, if asked) one by one.
    logger.info({ rpc, caller: describeIdentity(caller), code: codeName(error.code), durationMs: 0, error: error.rawMessage }, 'rpc');
    const heard = options.onRefused?.({ service: method.parent.typeName, method: method.name, caller, code: error.code, reason: error.rawMessage });
    return heard === undefined ? undefined : Promise.resolve(heard).catch((err: unknown) => logger.error({ err, rpc }, 'refusal listener failed'));
  };

  const connectHandler = (readMaxBytes: number) =>
    conformGrpcStatus(
      connectNodeAdapter({
        routes: (router) => {
          for (const registration of options.services) registration.register(router);
          router.service(Health, healthService(health, shutdown.signal));
          router.service(ReflectionV1, reflectionServiceV1(reflection));
          router.service(ReflectionV1alpha, reflectionServiceV1alpha(reflection));
        },
        interceptors: [...(options.interceptors ?? []), requestLogInterceptor(logger), refuseNulStrings()],
        readMaxBytes,
        writeMaxBytes: options.writeMaxBytes ?? 4 * mib,
        ...(options.compression === false ? { acceptCompression: [] } : {}),
        shutdownSignal: cancelInFlight.signal,
        contextValues: (req) => {
          const values = createContextValues();
          // Only requests the gate admitted get here; without its decision the caller stays anonymous and principalOf refuses.
          const caller = gate.callerOf(req as http2.Http2ServerRequest);
          if (caller !== undefined) values.set(callerKey, caller);
          const socket = (req as http2.Http2ServerRequest).stream?.session?.socket as TLSSocket | undefined;
          if (socket) values.set(peerCertificateKey, peerCertificateOf(socket, trust)).set(peerAddressKey, socket.remoteAddress ?? '');
          return values;
        },
      }),
    );
  const readMaxBytes = options.readMaxBytes ?? 4 * mib;
  const forCertificates = connectHandler(readMaxBytes);
  // A caller without a certificate (JoinNode only) gets a small message limit: its request is a token and a CSR.
  const forAnonymous = connectHandler(Math.min(readMaxBytes, ANONYMOUS_READ_MAX_BYTES));
  const gate = headerGate({ services: routed, revoked, trust, onRefused: refused }, (req, res, caller) =>
    (caller.kind === 'anonymous' ? forAnonymous : forCertificates)(req, res),
  );

  const server = http2.createSecureServer(
    {
      ca: options.tls.caPem,
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      allowHTTP1: false,
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListBytes },
    },
    endUnreadRequests(gate.handler),
  );
  limitConnectionsPerPeer(server, limits.maxConnectionsPerPeer, (address) =>
    tally.record('connection over the per-peer limit', address, `more than ${limits.maxConnectionsPerPeer} connections from one address`),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    // A client that vanishes mid-call surfaces as a session error; it is the
    // client's problem, not the server's.
    session.on('error', (error) => logger.debug({ err: error.message }, 'http2 session error'));
  });
  server.on('tlsClientError', (error, socket) => tally.record('tls handshake failed', socket.remoteAddress ?? '', error.message));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  health.set('', ServingStatus.SERVING);
  for (const service of served) health.set(service.typeName, ServingStatus.SERVING);
  logger.info({ host: options.host, port, services: served.map((s) => s.typeName) }, `${options.name} serving`);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      health.setAll(ServingStatus.NOT_SERVING);
      shutdown.abort();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // GOAWAY: clients stop sending new calls; in-flight ones may finish.
      for (const session of sessions) session.close();
      const drained = await Promise.race([stopped.then(() => true), delay(options.drainTimeoutMs ?? 10_000).then(() => false)]);
      if (!drained) {
        logger.warn({ openSessions: sessions.size }, 'drain timeout: cancelling in-flight calls');
        cancelInFlight.abort(new ConnectError('the server is shutting down', Code.Unavailable));
        await Promise.race([stopped, delay(1000)]);
        for (const session of sessions) session.destroy();
        await stopped;
      }
      tally.flush();
      logger.info(`${options.name} stopped`);
    })();
    return closing;
  };

  return { port, url: `https://${urlHost(options.host)}:${port}`, health, shuttingDown: shutdown.signal, close };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
