// Per-RPC server metrics under the names go-grpc-prometheus made common, so existing gRPC
// dashboards and alerts work: calls started and handled (by method and code), handling latency,
// and calls in flight. Labels come from the served contract only (service, method, kind) and the
// gRPC code, so their number is bounded; an unknown method is never counted. Calls the server
// refuses from their headers never reach an interceptor: the server reports them through
// `refused`, so each call is counted exactly once either way.
import type { DescMethod } from '@bufbuild/protobuf';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { onCallEnd } from '../rpc/call-end.js';
import { SECONDS_BUCKETS } from './metrics-registry.js';

const methodLabels = ['grpc_service', 'grpc_method', 'grpc_type'] as const;

export interface RpcMetrics {
  /** Counts and times every call that reaches the interceptors (outermost but for tracing). */
  readonly interceptor: Interceptor;
  /** Counts a call refused before any interceptor ran (authorization on the headers). */
  refused(method: DescMethod, code: Code, seconds: number): void;
}

export function rpcMetrics(registry: Registry): RpcMetrics {
  const started = new Counter({
    name: 'grpc_server_started_total',
    help: 'RPCs started on the server, by service, method and kind.',
    labelNames: methodLabels,
    registers: [registry],
  });
  const handled = new Counter({
    name: 'grpc_server_handled_total',
    help: 'RPCs completed on the server, by service, method, kind and gRPC status code.',
    labelNames: [...methodLabels, 'grpc_code'],
    registers: [registry],
  });
  const handling = new Histogram({
    name: 'grpc_server_handling_seconds',
    help: 'Time from the start of an RPC until the server finished it (the end of the response stream for streaming RPCs), by gRPC status code.',
    labelNames: [...methodLabels, 'grpc_code'],
    buckets: [...SECONDS_BUCKETS],
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'grpc_server_in_flight_calls',
    help: 'RPCs the server is handling now.',
    labelNames: methodLabels,
    registers: [registry],
  });
  const labelsOf = (method: DescMethod) => ({ grpc_service: method.parent.typeName, grpc_method: method.name, grpc_type: kindName(method.methodKind) });
  const interceptor = onCallEnd((req) => {
    const labels = labelsOf(req.method);
    const begun = performance.now();
    started.inc(labels);
    inFlight.inc(labels);
    return (error) => {
      const code = { ...labels, grpc_code: error === undefined ? 'OK' : codeName(ConnectError.from(error).code) };
      handled.inc(code);
      handling.observe(code, (performance.now() - begun) / 1000);
      inFlight.dec(labels);
    };
  });
  return {
    interceptor,
    refused(method, code, seconds) {
      const labels = labelsOf(method);
      started.inc(labels);
      handled.inc({ ...labels, grpc_code: codeName(code) });
      handling.observe({ ...labels, grpc_code: codeName(code) }, seconds);
    },
  };
}

const kindNames: Record<DescMethod['methodKind'], string> = {
  unary: 'unary',
  server_streaming: 'server_stream',
  client_streaming: 'client_stream',
  bidi_streaming: 'bidi_stream',
};

function kindName(kind: DescMethod['methodKind']): string {
  return kindNames[kind];
}

/** The code's name as gRPC's Go implementation spells it ("OK", "InvalidArgument"), as dashboards expect. */
function codeName(code: Code): string {
  return Code[code] ?? String(code);
}
