// Typed configuration from env vars over an optional JSON file over defaults, validated all at once.
import { readFileSync } from 'node:fs';
import { errnoCode } from '../errors/errno.js';
import type { ConfigIssue, ConfigSource } from './config-error.js';
import { ConfigError } from './config-error.js';
import type { Setting } from './settings.js';
import { expandPath } from './settings.js';

export const CONFIG_FILE_ENV = 'SHELLWEGO_CONFIG';

export type SettingValue<X> = X extends Setting<infer T> ? T : never;
export type Typed<S> = { readonly [K in keyof S]: SettingValue<S[K]> };

export interface ConfigDefinition<S extends Record<string, Setting<unknown>>> {
  readonly envPrefix: string;
  readonly settings: S;
  /** The env var of each setting, e.g. heartbeatInterval -> SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL. */
  readonly envNames: { readonly [K in keyof S]: string };
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** JSON file; else env SHELLWEGO_CONFIG; else none. */
  file?: string;
}

/** heartbeatInterval -> HEARTBEAT_INTERVAL, caURL -> CA_URL, s3Bucket -> S3_BUCKET. */
export function toEnvSuffix(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

export function defineConfig<S extends Record<string, Setting<unknown>>>(envPrefix: string, settings: S): ConfigDefinition<S> {
  const prefix = envPrefix.endsWith('_') ? envPrefix : `${envPrefix}_`;
  if (!/^[A-Z][A-Z0-9_]*_$/.test(prefix)) {
    throw new Error(`config env prefix must be upper-case letters, digits and underscores, got "${envPrefix}"`);
  }
  const envNames: Record<string, string> = {};
  for (const key of Object.keys(settings)) {
    if (!/^[a-z][a-zA-Z0-9]*$/.test(key)) {
      throw new Error(`config setting names must be camelCase, got "${key}"`);
    }
    envNames[key] = prefix + toEnvSuffix(key);
  }
  return Object.freeze({ envPrefix: prefix, settings, envNames: Object.freeze(envNames) as ConfigDefinition<S>['envNames'] });
}

/** Reads and validates every setting; throws ConfigError listing every problem found. */
export function loadConfig<S extends Record<string, Setting<unknown>>>(definition: ConfigDefinition<S>, options: LoadConfigOptions = {}): Typed<S> {
  const env = options.env ?? process.env;
  const issues: ConfigIssue[] = [];
  const file = readConfigFile(options.file, env, issues);
  const known = new Set(Object.keys(definition.settings));
  for (const key of Object.keys(file?.values ?? {})) {
    if (!known.has(key)) {
      issues.push({
        setting: key,
        envVar: undefined,
        source: 'file',
        message: `${file?.label ?? 'config file'}: unknown key "${key}" (known keys: ${[...known].join(', ')})`,
      });
    }
  }

  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(definition.settings)) {
    const envVar = definition.envNames[key] ?? key;
    const envValue = env[envVar];
    // An empty env var counts as unset: templated unit files and compose files produce them.
    const fromEnv = envValue !== undefined && envValue !== '';
    const fromFile = !fromEnv && file !== undefined && Object.hasOwn(file.values, key);
    let source: ConfigSource;
    let input: unknown;
    if (fromEnv) {
      [source, input] = ['env', envValue];
    } else if (fromFile) {
      [source, input] = ['file', file.values[key]];
    } else if (setting.defaultInput !== undefined) {
      [source, input] = ['default', setting.defaultInput];
    } else if (setting.optional) {
      out[key] = undefined;
      continue;
    } else {
      const help = setting.description === undefined ? '' : ` (${setting.description})`;
      issues.push({
        setting: key,
        envVar,
        source: 'missing',
        message: `${envVar}: required but not set; set env ${envVar} or key "${key}" in the config file${help}`,
      });
      continue;
    }
    const result = setting.parse(input, { env });
    if (result.ok) {
      out[key] = result.value;
      continue;
    }
    const got = setting.sensitive ? '(value hidden)' : show(input);
    const where = source === 'file' ? `from ${file?.label ?? 'config file'} key "${key}"` : `from ${source}`;
    issues.push({ setting: key, envVar, source, message: `${envVar}: expected ${result.expected}, got ${got} (${where})` });
  }

  if (issues.length > 0) {
    throw new ConfigError(issues);
  }
  return Object.freeze(out) as Typed<S>;
}

interface ConfigFile {
  label: string;
  values: Record<string, unknown>;
}

function readConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): ConfigFile | undefined {
  const fromEnv = env[CONFIG_FILE_ENV];
  const given = explicit ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
  if (given === undefined) {
    return undefined;
  }
  const origin = explicit !== undefined ? 'config file' : `config file (from ${CONFIG_FILE_ENV})`;
  const path = expandPath(given, env);
  const label = `${origin} ${path ?? given}`;
  const problem = (message: string): undefined => {
    issues.push({ setting: CONFIG_FILE_ENV, envVar: CONFIG_FILE_ENV, source: 'file', message: `${label}: ${message}` });
    return undefined;
  };
  if (path === undefined) {
    return problem('not a usable path');
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return problem(`cannot be read (${errnoCode(err) ?? String(err)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the file's text, which may hold sensitive settings: report a position only.
    return problem(`is not valid JSON${jsonErrorPosition(text, err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return problem('must hold a JSON object of settings');
  }
  return { label, values: parsed as Record<string, unknown> };
}

function jsonErrorPosition(text: string, err: unknown): string {
  const position = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
  if (position === undefined) {
    return '';
  }
  const before = text.slice(0, Number(position));
  const line = before.split('\n').length;
  const column = Number(position) - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}

function show(input: unknown): string {
  const text = JSON.stringify(input) ?? String(input);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
