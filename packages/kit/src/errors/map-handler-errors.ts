/**
 * Wraps every handler of a Connect service implementation so that whatever it throws (or its
 * response stream throws) passes through toConnectError first: the one place where a service
 * turns its domain errors into the status codes its contract promises.
 */
export function mapHandlerErrors<T extends object>(impl: T, toConnectError: (err: unknown) => unknown): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(impl)) {
    wrapped[name] =
      typeof handler === 'function'
        ? (...args: unknown[]): unknown => {
            let result: unknown;
            try {
              result = handler.apply(impl, args);
            } catch (err) {
              throw toConnectError(err);
            }
            if (isAsyncIterable(result)) return mapStream(result, toConnectError);
            if (result instanceof Promise) {
              return result.catch((err: unknown) => {
                throw toConnectError(err);
              });
            }
            return result;
          }
        : handler;
  }
  return wrapped as T;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function* mapStream(stream: AsyncIterable<unknown>, toConnectError: (err: unknown) => unknown): AsyncGenerator<unknown> {
  try {
    yield* stream;
  } catch (err) {
    throw toConnectError(err);
  }
}
