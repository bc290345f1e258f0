import { ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { callerKey, describeIdentity } from '../auth/index.js';
import { onCallEnd } from './call-end.js';

/**
 * Logs one line per finished RPC: method, caller, gRPC code and duration.
 * Never logs messages: they may carry secret values.
 */
export function requestLogInterceptor(logger: Logger): Interceptor {
  return onCallEnd((req) => {
    const started = performance.now();
    const rpc = `${req.service.typeName}/${req.method.name}`;
    return (error) => {
      const caller = describeIdentity(req.contextValues.get(callerKey));
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      if (error === undefined) {
        logger.info({ rpc, caller, code: 'ok', durationMs }, 'rpc');
        return;
      }
      const connectError = ConnectError.from(error);
      logger.info({ rpc, caller, code: codeName(connectError.code), durationMs, error: connectError.rawMessage }, 'rpc');
    };
  });
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
