import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient, type Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { clientTracingInterceptor } from '../tracing/rpc-tracing.js';
import type { TlsMaterial } from './serve.js';

export interface MtlsTransportOptions {
  /** https://host:port of the service. */
  readonly baseUrl: string;
  readonly tls: TlsMaterial | Omit<TlsMaterial, 'certPem' | 'keyPem'>;
  /** Largest response message accepted. Default 4 MiB. */
  readonly readMaxBytes?: number;
  /** Default deadline for calls without their own timeout. */
  readonly defaultTimeoutMs?: number;
}

/**
 * A gRPC-over-HTTP/2 transport that verifies the server against the cluster
 * CA and presents a client certificate. Leaving out the certificate is only
 * useful for JoinNode.
 */
export function createMtlsTransport(options: MtlsTransportOptions): Transport {
  const tls = options.tls;
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    readMaxBytes: options.readMaxBytes ?? 4 * 1024 * 1024,
    // Sends the caller's trace context (W3C traceparent) with every call.
    interceptors: [clientTracingInterceptor()],
    ...(options.defaultTimeoutMs ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
    nodeOptions: {
      ca: tls.caPem,
      ...('certPem' in tls ? { cert: tls.certPem, key: tls.keyPem } : {}),
      rejectUnauthorized: true,
    },
  });
}

/** A typed client for any generated service over mTLS. */
export function createMtlsClient<S extends DescService>(service: S, options: MtlsTransportOptions): Client<S> {
  return createClient(service, createMtlsTransport(options));
}
