// Typed, validated service configuration from env vars and an optional JSON file.

export type { ConfigIssue, ConfigSource } from './config-error.js';
export { ConfigError } from './config-error.js';
export type { ConfigDefinition, LoadConfigOptions, SettingValue, Typed } from './define-config.js';
export { CONFIG_FILE_ENV, defineConfig, loadConfig, toEnvSuffix } from './define-config.js';
export { defaultPorts, SHELLWEGO_HOME_ENV, shellwegoHome, userHome } from './home.js';
export type { CommonOptions, HostPort, ParseContext, ParseResult, Setting } from './settings.js';
export {
  boolean,
  database,
  duration,
  expandPath,
  hostPort,
  hostPortOrOff,
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
  urlList,
} from './settings.js';
