// OpenTelemetry for one process. W3C trace context is always propagated (an incoming traceparent
// reaches every outgoing call and every log line), but spans are recorded and exported only when
// the standard OTEL_* variables ask for an OTLP exporter; otherwise the API stays a no-op.
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { addClientInterceptor } from '../rpc/client-interceptors.js';
import { clientTracingInterceptor } from './rpc-tracing.js';

export interface TracingOptions {
  /** service.name of the spans unless OTEL_SERVICE_NAME says otherwise: "scheduler", "shellwego-cli", ... */
  readonly serviceName: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface Tracing {
  /** Whether spans are exported (the OTEL_* variables ask for it). */
  readonly exporting: boolean;
  /** Exports what is buffered and stops; call before the process exits. */
  shutdown(): Promise<void>;
}

let propagating = false;

/**
 * Context and propagation for the process, once: the log mixin and the interceptors rely on them,
 * and every client transport made from now on sends the trace context.
 */
export function propagateTraceContext(): void {
  if (propagating) return;
  propagating = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  addClientInterceptor(clientTracingInterceptor());
}

/**
 * OTLP export wanted: an endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_TRACES_EXPORTER is unset or "otlp", and
 * OTEL_SDK_DISABLED is not "true".
 */
export function exportWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((name) => name.trim().toLowerCase());
  if (!exporters.includes('otlp')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * Sets up tracing for the process. Sampling follows OTEL_TRACES_SAMPLER (default: parent-based,
 * always on). The SDK and the exporter are loaded only when spans are to be
 * exported (OTLP over HTTP with JSON bodies, configured by the exporter's own OTEL_EXPORTER_OTLP_*
 * variables), so a process that does not export pays nothing for them.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const env = options.env ?? process.env;
  propagateTraceContext();
  if (!exportWanted(env)) return { exporting: false, shutdown: async () => {} };
  const { exportSpans } = await import('./otlp-export.js');
  const stop = exportSpans(env.OTEL_SERVICE_NAME?.trim() || options.serviceName);
  let stopping: Promise<void> | undefined;
  return {
    exporting: true,
    shutdown: () => (stopping ??= stop().catch(() => undefined)),
  };
}
