import type { SecureClientSessionOptions } from 'node:http2';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient, type Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { TrustBundle } from '../pki/trust-bundle.js';
import { clientInterceptors } from './client-interceptors.js';
import { connectionFailuresAsUnavailable } from './connection-failure.js';
import type { TlsMaterial } from './serve.js';
import { type ExpectedServer, serverIdentityCheck } from './server-identity.js';

/** What a client presents and trusts. Leaving out the certificate is only useful for JoinNode. */
export type ClientTls = TlsMaterial | Omit<TlsMaterial, 'certPem' | 'keyPem'>;

export interface MtlsTransportOptions {
  /** https://host:port of the service. */
  readonly baseUrl: string;
  /** The principal that must answer there; any other cluster member is refused during the handshake. */
  readonly server: ExpectedServer;
  readonly tls: ClientTls;
  /** Largest response message accepted. Default 4 MiB. */
  readonly readMaxBytes?: number;
  /** Default deadline for calls without their own timeout. */
  readonly defaultTimeoutMs?: number;
}

/**
 * The TLS settings of every client connection: verify the server against the cluster CA, check
 * it is the expected principal, and present the client certificate when there is one.
 */
export function mtlsSessionOptions(tls: ClientTls, server: ExpectedServer): SecureClientSessionOptions {
  return {
    ca: tls.caPem,
    ...('certPem' in tls ? { cert: tls.certPem, key: tls.keyPem } : {}),
    rejectUnauthorized: true,
    checkServerIdentity: serverIdentityCheck(server, TrustBundle.parse(tls.caPem)),
  };
}

/** A gRPC-over-HTTP/2 transport to one expected server over mutual TLS. */
export function createMtlsTransport(options: MtlsTransportOptions): Transport {
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    readMaxBytes: options.readMaxBytes ?? 4 * 1024 * 1024,
    // What the process registered for every client (e.g. sending the trace context), inside the
    // one that reports a connection lost mid-call as UNAVAILABLE.
    interceptors: [connectionFailuresAsUnavailable(), ...clientInterceptors()],
    ...(options.defaultTimeoutMs ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
    nodeOptions: mtlsSessionOptions(options.tls, options.server),
  });
}

/** A typed client for any generated service over mTLS. */
export function createMtlsClient<S extends DescService>(service: S, options: MtlsTransportOptions): Client<S> {
  return createClient(service, createMtlsTransport(options));
}
