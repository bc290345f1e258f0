// Typed, validated service configuration from env vars and an optional JSON file.
export { defineConfig, loadConfig, toEnvSuffix, CONFIG_FILE_ENV } from './define-config.js';
export type { ConfigDefinition, LoadConfigOptions, SettingValue, Typed } from './define-config.js';
export { ConfigError } from './config-error.js';
export type { ConfigIssue, ConfigSource } from './config-error.js';
export {
  boolean,
  database,
  duration,
  expandPath,
  hostPort,
  integer,
  keyValues,
  oneOf,
  optional,
  parseDuration,
  path,
  pathList,
  port,
  string,
  url,
} from './settings.js';
export type { CommonOptions, HostPort, ParseContext, ParseResult, Setting } from './settings.js';
export { defaultPorts, shellwegoHome, userHome, SHELLWEGO_HOME_ENV } from './home.js';
