import { ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { callerKey, describeIdentity } from '../auth/index.js';

/**
 * Logs one line per finished RPC: method, caller, gRPC code and duration.
 * Never logs messages: they may carry secret values.
 */
export function requestLogInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const rpc = `${req.service.typeName}/${req.method.name}`;
    const done = (error?: unknown) => {
      const caller = describeIdentity(req.contextValues.get(callerKey));
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      if (error === undefined) {
        logger.info({ rpc, caller, code: 'ok', durationMs }, 'rpc');
        return;
      }
      const connectError = ConnectError.from(error);
      logger.info({ rpc, caller, code: codeName(connectError.code), durationMs, error: connectError.rawMessage }, 'rpc');
    };
    try {
      const res = await next(req);
      if (!res.stream) {
        done();
        return res;
      }
      return { ...res, message: logWhenDone(res.message, done) };
    } catch (error) {
      done(error);
      throw error;
    }
  };
}

async function* logWhenDone<T>(messages: AsyncIterable<T>, done: (error?: unknown) => void): AsyncIterable<T> {
  try {
    yield* messages;
    done();
  } catch (error) {
    done(error);
    throw error;
  }
}

/** The code as the log spells it: "permission_denied". */
export function codeName(code: number): string {
  return codeNames[code] ?? String(code);
}

const codeNames: Record<number, string> = {
  1: 'canceled',
  2: 'unknown',
  3: 'invalid_argument',
  4: 'deadline_exceeded',
  5: 'not_found',
  6: 'already_exists',
  7: 'permission_denied',
  8: 'resource_exhausted',
  9: 'failed_precondition',
  10: 'aborted',
  11: 'out_of_range',
  12: 'unimplemented',
  13: 'internal',
  14: 'unavailable',
  15: 'data_loss',
  16: 'unauthenticated',
};
