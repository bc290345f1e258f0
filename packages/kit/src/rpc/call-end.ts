import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';

/** How a call ended: undefined when it succeeded, else the error its caller saw. */
export type CallEnd = (error?: unknown) => void;

/**
 * An interceptor that hears once when each call ends: a unary call when its
 * handler returns or throws, a streaming one when its last message is sent,
 * it fails, or the caller goes away (CANCELED). `begin` runs as the call
 * starts and returns what to do at its end.
 */
export function onCallEnd(begin: (req: Parameters<Parameters<Interceptor>[0]>[0]) => CallEnd): Interceptor {
  return (next) => async (req) => {
    let ended = false;
    const end = begin(req);
    const once: CallEnd = (error) => {
      if (ended) return;
      ended = true;
      end(error);
    };
    try {
      const res = await next(req);
      if (!res.stream) {
        once();
        return res;
      }
      return { ...res, message: endWith(res.message, once) };
    } catch (error) {
      once(error);
      throw error;
    }
  };
}

async function* endWith<T>(messages: AsyncIterable<T>, end: CallEnd): AsyncIterable<T> {
  try {
    yield* messages;
    end();
  } catch (error) {
    end(error);
    throw error;
  } finally {
    // The caller went away (return() on the iterator): the call is over all the same.
    end(new ConnectError('the call was cancelled', Code.Canceled));
  }
}
