// OpenTelemetry traces: W3C trace context over every RPC, OTLP export when OTEL_* asks for it.
export { clientTracingInterceptor, serverTracingInterceptor } from './rpc-tracing.js';
export { activeTraceIds, outsideTrace, runInSpan, traceCarrier, withTraceCarrier } from './trace-context.js';
export { exportWanted, propagateTraceContext, startTracing, type Tracing, type TracingOptions } from './tracing-setup.js';
