// Interceptors every client transport of the process gets, registered by mechanisms set up at
// start (tracing adds the one that sends the trace context). A registry rather than an import so
// that a process without them (the CLI without OTEL_* settings) does not load their code.
import type { Interceptor } from '@connectrpc/connect';

const registered: Interceptor[] = [];

/** Adds an interceptor to every client transport made from now on. */
export function addClientInterceptor(interceptor: Interceptor): void {
  registered.push(interceptor);
}

/** The interceptors a new transport gets, outermost first. */
export function clientInterceptors(): Interceptor[] {
  return [...registered];
}
