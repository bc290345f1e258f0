// Trace context where no RPC header carries it (an order inside a long-lived stream) and the ids
// log lines carry.
import { type Attributes, context, isSpanContextValid, propagation, ROOT_CONTEXT, type Span, SpanStatusCode, trace } from '@opentelemetry/api';

/** The active trace context as W3C fields (traceparent, tracestate), to put in a message. */
export function traceCarrier(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** Runs `fn` in the trace context a message carried (see traceCarrier); as is when it carried none. */
export function withTraceCarrier<T>(carrier: Readonly<Record<string, string>> | undefined, fn: () => T): T {
  if (carrier === undefined || Object.keys(carrier).length === 0) return fn();
  return context.with(propagation.extract(context.active(), carrier), fn);
}

/** Runs `fn` in a new INTERNAL span, ended when its promise settles (marked as an error when it rejects). */
export async function runInSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return trace.getTracer('shellwego').startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** trace_id and span_id of the active span, for log lines; undefined outside any trace. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const span = trace.getSpan(context.active());
  if (span === undefined) return undefined;
  const ids = span.spanContext();
  return isSpanContextValid(ids) ? { trace_id: ids.traceId, span_id: ids.spanId } : undefined;
}

/** Runs `fn` outside any trace: for work that outlives the traced request (watchers, polls), so it does not join it. */
export function outsideTrace<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}
