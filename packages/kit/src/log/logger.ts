// The one logger factory: pino JSON lines with secrets and raw bytes kept out.
import { pino } from 'pino';
import { activeTraceIds } from '../tracing/trace-context.js';
import { toLoggable } from './loggable.js';

export type Logger = pino.Logger;

export interface CreateLoggerOptions {
  service: string;
  /** pino level name; else env SHELLWEGO_LOG_LEVEL; else "info". */
  level?: string;
  /** Defaults to stdout. */
  destination?: pino.DestinationStream | NodeJS.WritableStream;
  /** Where SHELLWEGO_LOG_LEVEL is read from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export const LOG_LEVEL_ENV = 'SHELLWEGO_LOG_LEVEL';
export const REDACTED = '[redacted]';

const SECRET_KEYS = ['value', 'secret', 'password', 'token', 'secret_env', 'secretEnv'];

// Top level and one level down (pino's `*.key`), plus the usual HTTP credential header.
export const REDACT_PATHS: readonly string[] = [...SECRET_KEYS, ...SECRET_KEYS.map((key) => `*.${key}`), 'req.headers.authorization', 'headers.authorization'];

export function createLogger(options: CreateLoggerOptions): Logger {
  const level = resolveLevel(options.level, options.env ?? process.env);
  const loggerOptions: pino.LoggerOptions = {
    level,
    base: { service: options.service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // A line written while handling a traced call names the trace (and span) it belongs to.
    mixin: () => activeTraceIds() ?? {},
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => toLoggable(bindings) as pino.Bindings,
      log: (object) => loggableRecord(object),
    },
    serializers: {
      // formatters.log has already turned errors into pino's serialized shape; reserializing that
      // plain object would lose the error's type.
      err: (value: unknown) => (value instanceof Error ? loggableRecord(value) : value),
    },
    hooks: {
      // Interpolation arguments ("%s", "%j", "%o") bypass the formatters above.
      logMethod(args, method) {
        const safe = args.map((arg, index) => (index === 0 ? arg : toLoggable(arg))) as typeof args;
        method.apply(this, safe);
      },
    },
  };
  const logger = options.destination === undefined ? pino(loggerOptions) : pino(loggerOptions, options.destination);
  // pino applies formatters.bindings to the base bindings only, not to child() bindings; children
  // inherit this override through their prototype chain, so grandchildren are covered too.
  const child = logger.child;
  logger.child = function <L extends string = never>(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions<L>): pino.Logger<L> {
    return Reflect.apply(child<L>, this, [loggableRecord(bindings), childOptions]);
  };
  return logger;
}

function loggableRecord(object: object): Record<string, unknown> {
  const safe = toLoggable(object);
  // A bare SecretBytes or Buffer passed as the merge object becomes a string: keep it a field.
  return typeof safe === 'object' && safe !== null ? (safe as Record<string, unknown>) : { data: safe };
}

function resolveLevel(explicit: string | undefined, env: NodeJS.ProcessEnv): string {
  const fromEnv = env[LOG_LEVEL_ENV];
  const level = explicit ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'info');
  if (!(level in pino.levels.values) && level !== 'silent') {
    const where = explicit !== undefined ? 'the level option' : LOG_LEVEL_ENV;
    const known = [...Object.keys(pino.levels.values), 'silent'].join(', ');
    throw new Error(`${where}: unknown log level "${level}"; use one of ${known}`);
  }
  return level;
}
