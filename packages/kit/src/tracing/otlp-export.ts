// The OpenTelemetry SDK with the OTLP/HTTP (JSON) exporter, loaded only by a process that exports.
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * Registers a tracer provider exporting to the OTLP endpoint the exporter's own
 * OTEL_EXPORTER_OTLP_* variables name; returns what flushes and stops it.
 */
export function exportSpans(serviceName: string): () => Promise<void> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.namespace': 'shellwego', 'process.pid': process.pid }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 1_000 })],
  });
  trace.setGlobalTracerProvider(provider);
  return () => provider.shutdown();
}
