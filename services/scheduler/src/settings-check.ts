import { readFile } from 'node:fs/promises';
import { ConfigError, type ConfigIssue, type Typed } from '@shellwego/kit/config';
import { errnoCode } from '@shellwego/kit/errors';
import { type GrantSigningKey, loadGrantSigningKey, MAX_GRANT_TTL_MS } from '@shellwego/kit/grant';
import { schedulerConfig } from './config.js';
import { subnetSettingsProblem } from './store/node-subnets.js';

type SchedulerSettings = Typed<typeof schedulerConfig.settings>;
type DurationKey = {
  [K in keyof SchedulerSettings]: SchedulerSettings[K] extends number ? (K extends 'maxMessageBytes' | 'nodeSubnetPrefix' ? never : K) : never;
}[keyof SchedulerSettings];

const MINUTE = 60_000;
const RANGES: ReadonlyArray<readonly [DurationKey, number, number, string]> = [
  ['heartbeatInterval', 50, 10 * MINUTE, '50ms and 10m'],
  ['heartbeatGrace', 0, 10 * MINUTE, '0s and 10m'],
  ['registryTimeout', 100, 5 * MINUTE, '100ms and 5m'],
  ['grantTtl', 1_000, MAX_GRANT_TTL_MS, '1s and 10m'],
  ['nodeCertValidity', MINUTE, 365 * 24 * 60 * MINUTE, '1m and 365d'],
  ['leaderPollInterval', 50, MINUTE, '50ms and 1m'],
  ['stopGracePeriod', 0, 60 * MINUTE, '0s and 1h'],
];

/** Range checks the typed config cannot express; every problem in one ConfigError. */
export function checkSettings(config: SchedulerSettings): void {
  const issues: ConfigIssue[] = [];
  for (const [key, min, max, range] of RANGES) {
    const value = config[key];
    if (value < min || value > max) {
      const envVar = schedulerConfig.envNames[key];
      issues.push({ setting: key, envVar, source: 'env', message: `${envVar}: must be between ${range}, got ${value} ms` });
    }
  }
  const subnets = subnetSettingsProblem({ clusterCidr: config.clusterCidr, nodePrefix: config.nodeSubnetPrefix });
  if (subnets !== undefined) {
    const key = subnets.startsWith('CLUSTER_CIDR') ? 'clusterCidr' : 'nodeSubnetPrefix';
    const envVar = schedulerConfig.envNames[key];
    issues.push({ setting: key, envVar, source: 'env', message: `${envVar}${subnets.slice(subnets.indexOf(':'))}` });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

export interface SigningMaterial {
  readonly grantKey: GrantSigningKey;
  readonly caKeyPem: string;
}

/** The grant signing key and the CA key, with errors that name the setting to fix. */
export async function loadSigningMaterial(config: SchedulerSettings): Promise<SigningMaterial> {
  const read = async (key: 'grantSigningKey' | 'caKey'): Promise<string> => {
    try {
      return await readFile(config[key], 'utf8');
    } catch (error) {
      const envVar = schedulerConfig.envNames[key];
      const code = errnoCode(error) ?? 'unreadable';
      throw new ConfigError([
        {
          setting: key,
          envVar,
          source: 'default',
          message: `${envVar}: cannot read ${config[key]} (${code}); run \`npm start\` once to create a development PKI, or point ${envVar} at the PEM file`,
        },
      ]);
    }
  };
  let grantKey: GrantSigningKey;
  try {
    grantKey = loadGrantSigningKey(await read('grantSigningKey'));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const envVar = schedulerConfig.envNames.grantSigningKey;
    throw new ConfigError([
      { setting: 'grantSigningKey', envVar, source: 'default', message: `${envVar}: ${error instanceof Error ? error.message : String(error)}` },
    ]);
  }
  return { grantKey, caKeyPem: await read('caKey') };
}
