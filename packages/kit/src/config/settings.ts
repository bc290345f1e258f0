// Setting kinds: each knows how to parse an env string (or a JSON file value) into its type.
import { join, resolve } from 'node:path';
import { SHELLWEGO_HOME_ENV, shellwegoHome, userHome } from './home.js';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; expected: string };

export interface ParseContext {
  env: NodeJS.ProcessEnv;
}

export interface Setting<T> {
  readonly kind: string;
  readonly description: string | undefined;
  /** Keeps the value out of error messages. */
  readonly sensitive: boolean;
  /** In the same forms env accepts; parsed at load time so path defaults see the loaded env. */
  readonly defaultInput: unknown;
  /** Missing without a default: undefined if optional, else an error. */
  readonly optional: boolean;
  parse(input: unknown, context: ParseContext): ParseResult<T>;
}

export interface CommonOptions {
  description?: string;
  sensitive?: boolean;
}

export interface HostPort {
  host: string;
  port: number;
}

function setting<T>(
  kind: string,
  options: CommonOptions & { default?: unknown },
  parse: (input: unknown, context: ParseContext) => ParseResult<T>,
): Setting<T> {
  return Object.freeze({
    kind,
    description: options.description,
    sensitive: options.sensitive ?? false,
    defaultInput: options.default,
    optional: false,
    parse,
  });
}

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = (expected: string): ParseResult<never> => ({ ok: false, expected });

export function string(options: CommonOptions & { default?: string } = {}): Setting<string> {
  return setting('string', options, (input) => (typeof input === 'string' ? ok(input) : fail('a string')));
}

export function integer(options: CommonOptions & { min?: number; max?: number; default?: number } = {}): Setting<number> {
  const { min, max } = options;
  const range =
    min !== undefined && max !== undefined
      ? ` between ${min} and ${max}`
      : min !== undefined
        ? ` of at least ${min}`
        : max !== undefined
          ? ` of at most ${max}`
          : '';
  const expected = `an integer${range}`;
  return setting('integer', options, (input) => {
    const value = toInteger(input);
    if (value === undefined || (min !== undefined && value < min) || (max !== undefined && value > max)) {
      return fail(expected);
    }
    return ok(value);
  });
}

function toInteger(input: unknown): number | undefined {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) ? input : undefined;
  }
  if (typeof input === 'string' && /^[+-]?\d+$/.test(input.trim())) {
    const value = Number(input.trim());
    return Number.isSafeInteger(value) ? value : undefined;
  }
  return undefined;
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

export function boolean(options: CommonOptions & { default?: boolean } = {}): Setting<boolean> {
  return setting('boolean', options, (input) => {
    if (typeof input === 'boolean') {
      return ok(input);
    }
    const word = typeof input === 'string' ? input.trim().toLowerCase() : undefined;
    if (word !== undefined && TRUE_WORDS.has(word)) {
      return ok(true);
    }
    if (word !== undefined && FALSE_WORDS.has(word)) {
      return ok(false);
    }
    return fail('a boolean (true/false, yes/no, on/off, 1/0)');
  });
}

const PORT_EXPECTED = 'a TCP port number between 0 and 65535';

function toPort(input: unknown): number | undefined {
  const value = toInteger(input);
  return value !== undefined && value >= 0 && value <= 65535 ? value : undefined;
}

export function port(options: CommonOptions & { default?: number } = {}): Setting<number> {
  return setting('port', options, (input) => {
    const value = toPort(input);
    return value === undefined ? fail(PORT_EXPECTED) : ok(value);
  });
}

export function hostPort(options: CommonOptions & { default?: string } = {}): Setting<HostPort> {
  const expected = 'host:port like "0.0.0.0:7401" or "[::1]:7401"';
  return setting('hostPort', options, (input) => {
    if (typeof input !== 'string') {
      return fail(expected);
    }
    // A bracketed IPv6 address, or a name/IPv4 address without colons.
    const match = /^\[([0-9a-fA-F:.%\w]+)\]:(\d+)$/.exec(input) ?? /^([^\s:/[\]]+):(\d+)$/.exec(input);
    const host = match?.[1];
    const portValue = toPort(match?.[2]);
    if (host === undefined || portValue === undefined) {
      return fail(expected);
    }
    return ok({ host, port: portValue });
  });
}

/** A listen address, or "off" (undefined) for a listener that can be switched off. */
export function hostPortOrOff(options: CommonOptions & { default?: string } = {}): Setting<HostPort | undefined> {
  const address = hostPort(options);
  return setting('hostPortOrOff', options, (input, context) => {
    if (input === 'off') return ok(undefined);
    const parsed = address.parse(input, context);
    return parsed.ok ? parsed : fail(`${parsed.expected}, or "off"`);
  });
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds from "500ms", "10s", "5m", "1h", "1d" or a sum like "1h30m". */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(trimmed)) {
    return undefined;
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(amount) * (DURATION_UNITS_MS[unit ?? ''] ?? Number.NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

export function duration(options: CommonOptions & { default?: string } = {}): Setting<number> {
  return setting('duration', options, (input) => {
    const value = typeof input === 'string' ? parseDuration(input) : undefined;
    return value === undefined ? fail('a duration like "10s" or "500ms"') : ok(value);
  });
}

/** Expands a leading `~` or `$SHELLWEGO_HOME` / `${SHELLWEGO_HOME}` and makes the path absolute. */
export function expandPath(text: string, env: NodeJS.ProcessEnv): string | undefined {
  if (text === '') {
    return undefined;
  }
  if (text === '~' || text.startsWith('~/')) {
    return join(userHome(env), text.slice(1));
  }
  const homeVar = new RegExp(`^(?:\\$${SHELLWEGO_HOME_ENV}|\\$\\{${SHELLWEGO_HOME_ENV}\\})(?=/|$)`).exec(text);
  if (homeVar !== null) {
    return join(shellwegoHome(env), text.slice(homeVar[0].length));
  }
  // Anything else starting with ~ or $ is a typo or an expansion we do not do: refuse to guess.
  if (text.startsWith('~') || text.startsWith('$')) {
    return undefined;
  }
  return resolve(text);
}

export function path(options: CommonOptions & { default?: string } = {}): Setting<string> {
  return setting('path', options, (input, context) => {
    const value = typeof input === 'string' ? expandPath(input, context.env) : undefined;
    return value === undefined ? fail(`a path (a leading ~ or $${SHELLWEGO_HOME_ENV} is expanded)`) : ok(value);
  });
}

/** Comma-separated paths (in a file: a JSON array), each expanded like `path`. */
export function pathList(options: CommonOptions & { default?: string } = {}): Setting<readonly string[]> {
  const expected = `one or more paths separated by "," (a leading ~ or $${SHELLWEGO_HOME_ENV} is expanded)`;
  return setting('pathList', options, (input, context) => {
    const pieces: unknown[] = typeof input === 'string' ? input.split(',').map((piece) => piece.trim()) : Array.isArray(input) ? input : [];
    const paths = pieces.map((piece) => (typeof piece === 'string' ? expandPath(piece, context.env) : undefined));
    if (paths.length === 0 || paths.some((p) => p === undefined)) return fail(expected);
    return ok(Object.freeze(paths as string[]));
  });
}

export function url(options: CommonOptions & { protocols?: readonly string[]; default?: string } = {}): Setting<string> {
  const protocols = options.protocols?.map((p) => (p.endsWith(':') ? p : `${p}:`));
  const expected = protocols === undefined ? 'a URL' : `a URL with scheme ${protocols.map((p) => p.slice(0, -1)).join(' or ')}`;
  return setting('url', options, (input) => {
    if (typeof input !== 'string' || !URL.canParse(input)) {
      return fail(expected);
    }
    const parsed = new URL(input);
    if (protocols !== undefined && !protocols.includes(parsed.protocol)) {
      return fail(expected);
    }
    return ok(input);
  });
}

/**
 * Where a service's database lives: a postgres:// or postgresql:// URL (kept as given), memory://
 * (in-memory PGlite), or a PGlite data directory (expanded like path()). Sensitive by default
 * because a URL may carry a password.
 */
export function database(options: CommonOptions & { default?: string } = {}): Setting<string> {
  const expected = `a postgres:// URL or a directory for the embedded database (a leading ~ or $${SHELLWEGO_HOME_ENV} is expanded)`;
  return setting('database', { ...options, sensitive: options.sensitive ?? true }, (input, context) => {
    if (typeof input !== 'string') {
      return fail(expected);
    }
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input)?.[1]?.toLowerCase();
    if (scheme === 'postgres' || scheme === 'postgresql') {
      return URL.canParse(input) ? ok(input) : fail(expected);
    }
    if (scheme === 'memory') {
      return ok('memory://');
    }
    const dir = scheme === undefined ? expandPath(input, context.env) : undefined;
    return dir === undefined ? fail(expected) : ok(dir);
  });
}

export function oneOf<const V extends readonly [string, ...string[]]>(values: V, options: CommonOptions & { default?: V[number] } = {}): Setting<V[number]> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return setting('oneOf', options, (input) =>
    typeof input === 'string' && (values as readonly string[]).includes(input) ? ok(input as V[number]) : fail(expected),
  );
}

/** "k=v,k2=v2" (or an object of strings in the JSON file); defaults to no entries. */
export function keyValues(options: CommonOptions & { default?: string | Record<string, string> } = {}): Setting<Record<string, string>> {
  const expected = 'comma-separated key=value pairs like "zone=a,disk=ssd", each key once';
  return setting('keyValues', { ...options, default: options.default ?? '' }, (input) => {
    if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
      const entries = Object.entries(input);
      return entries.every(([, v]) => typeof v === 'string') ? ok(Object.fromEntries(entries) as Record<string, string>) : fail(expected);
    }
    if (typeof input !== 'string') {
      return fail(expected);
    }
    const out: Record<string, string> = {};
    for (const piece of input.split(',')) {
      if (piece.trim() === '') {
        continue;
      }
      const eq = piece.indexOf('=');
      const key = piece.slice(0, Math.max(eq, 0)).trim();
      if (eq <= 0 || key === '' || Object.hasOwn(out, key)) {
        return fail(expected);
      }
      out[key] = piece.slice(eq + 1).trim();
    }
    return ok(out);
  });
}

/** Comma-separated https URLs, e.g. the scheduler replicas a client tries in turn. */
export function urlList(options: CommonOptions & { default?: string } = {}): Setting<readonly string[]> {
  const expected = 'one or more https:// URLs separated by ","';
  return setting('urlList', options, (input) => {
    const pieces =
      typeof input === 'string'
        ? input
            .split(',')
            .map((p) => p.trim())
            .filter((p) => p !== '')
        : Array.isArray(input)
          ? input
          : [];
    const urls = pieces.filter((p): p is string => typeof p === 'string' && URL.canParse(p) && new URL(p).protocol === 'https:');
    if (urls.length === 0 || urls.length !== pieces.length) return fail(expected);
    return ok(Object.freeze(urls));
  });
}

/** Makes a setting without a default optional: missing means undefined instead of an error. */
export function optional<T>(inner: Setting<T>): Setting<T | undefined> {
  return Object.freeze({ ...inner, optional: true, parse: inner.parse });
}
