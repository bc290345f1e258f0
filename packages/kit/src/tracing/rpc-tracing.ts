// W3C trace context across every RPC: the server interceptor continues the caller's trace (a
// SERVER span whose context the handler, its logs and its own calls run in, streams included),
// the client interceptor starts a CLIENT span and sends its traceparent. Span attributes are the
// method and the gRPC code only: never a message, a header value or a caller's certificate.

import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { type Context, context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

const tracer = () => trace.getTracer('shellwego');

const headerGetter = {
  keys: (carrier: Headers) => [...carrier.keys()],
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
};
const headerSetter = { set: (carrier: Headers, key: string, value: string) => carrier.set(key, value) };

export function serverTracingInterceptor(): Interceptor {
  return (next) => async (req) => {
    const parent = propagation.extract(context.active(), req.header, headerGetter);
    return traced(req.service.typeName, req.method.name, SpanKind.SERVER, parent, () => next(req));
  };
}

export function clientTracingInterceptor(): Interceptor {
  return (next) => async (req) =>
    traced(req.service.typeName, req.method.name, SpanKind.CLIENT, context.active(), (spanContext) => {
      propagation.inject(spanContext, req.header, headerSetter);
      return next(req);
    });
}

type AnyResponse = Awaited<ReturnType<Parameters<Interceptor>[0]>>;

async function traced<R extends AnyResponse>(
  service: string,
  method: string,
  kind: SpanKind,
  parent: Context,
  call: (active: Context) => Promise<R>,
): Promise<R> {
  const span = tracer().startSpan(`${service}/${method}`, { kind, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } }, parent);
  const active = trace.setSpan(parent, span);
  try {
    const res = await context.with(active, () => call(active));
    if (!res.stream) {
      finish(span);
      return res;
    }
    return { ...res, message: withinSpan(res.message, active, span) };
  } catch (error) {
    finish(span, error);
    throw error;
  }
}

/** Each step of a response stream runs in the span's context (a streaming handler's body runs here), which ends with it. */
async function* withinSpan<T>(messages: AsyncIterable<T>, active: Context, span: Span): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const step = await context.with(active, () => iterator.next());
      if (step.done) break;
      yield step.value;
    }
    finish(span);
    ended = true;
  } catch (error) {
    finish(span, error);
    ended = true;
    throw error;
  } finally {
    if (!ended) {
      finish(span, new ConnectError('the call was cancelled', Code.Canceled));
      await iterator.return?.();
    }
  }
}

function finish(span: Span, error?: unknown): void {
  if (error === undefined) {
    span.setAttribute('rpc.grpc.status_code', 0);
  } else {
    const code = ConnectError.from(error).code;
    span.setAttribute('rpc.grpc.status_code', code);
    // The code's name, not the error's message: messages may quote input.
    span.setStatus({ code: SpanStatusCode.ERROR, message: Code[code] });
  }
  span.end();
}
