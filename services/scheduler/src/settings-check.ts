import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError, type ConfigIssue, type Typed } from '@shellwego/kit/config';
import { errnoCode } from '@shellwego/kit/errors';
import { type GrantSigningKey, loadGrantSigningKey, MAX_GRANT_TTL_MS } from '@shellwego/kit/grant';
import { CertificateAuthority, intermediateProblem, TrustBundle } from '@shellwego/kit/pki';
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
  /** The node-issuing intermediate, checked against the trust bundle. */
  readonly nodeCa: CertificateAuthority;
}

type KeyFileSetting = 'grantSigningKey' | 'nodeCaCert' | 'nodeCaKey';

/**
 * The grant signing key and the node intermediate, with errors that name the setting to fix.
 * The scheduler holds only a node-issuing intermediate: a root CA key (which could mint admin
 * and service identities), or a CA that is not a path-length-0 intermediate listed in the trust
 * bundle `trustPem` (TLS_CA), is refused.
 */
export async function loadSigningMaterial(config: SchedulerSettings, trustPem: string): Promise<SigningMaterial> {
  const fail = (key: KeyFileSetting, message: string): never => {
    const envVar = schedulerConfig.envNames[key];
    throw new ConfigError([{ setting: key, envVar, source: 'default', message: `${envVar}: ${message}` }]);
  };
  const read = async (key: KeyFileSetting): Promise<string> => {
    try {
      return await readFile(config[key], 'utf8');
    } catch (error) {
      const envVar = schedulerConfig.envNames[key];
      return fail(
        key,
        `cannot read ${config[key]} (${errnoCode(error) ?? 'unreadable'}); run \`npm start\` once to create a development PKI, or point ${envVar} at the PEM file`,
      );
    }
  };
  let grantKey: GrantSigningKey;
  try {
    grantKey = loadGrantSigningKey(await read('grantSigningKey'));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    return fail('grantSigningKey', error instanceof Error ? error.message : String(error));
  }
  const nodeCa = await loadNodeCa(await read('nodeCaCert'), await read('nodeCaKey'), trustPem, fail);
  return { grantKey, nodeCa };
}

async function loadNodeCa(
  certPem: string,
  keyPem: string,
  trustPem: string,
  fail: (key: KeyFileSetting, message: string) => never,
): Promise<CertificateAuthority> {
  const keyEnv = schedulerConfig.envNames.nodeCaKey;
  const intermediateHowTo =
    'create a node intermediate with `shellwego ca intermediate` on the machine that holds the root key and point NODE_CA_CERT and NODE_CA_KEY at it';
  let publicDer: Buffer;
  try {
    publicDer = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  } catch {
    return fail('nodeCaKey', 'is not a PEM private key');
  }
  const trust = TrustBundle.parse(trustPem, schedulerConfig.envNames.tlsCa);
  if (trust.roots.some((root) => root.publicKey.export({ type: 'spki', format: 'der' }).equals(publicDer))) {
    return fail(
      'nodeCaKey',
      `is the cluster root CA's key: with it the scheduler could sign any identity (an admin, the secrets service). ${intermediateHowTo}, then remove the root key from this host`,
    );
  }
  let ca: CertificateAuthority;
  try {
    ca = await CertificateAuthority.load(certPem, keyPem);
  } catch {
    return fail('nodeCaCert', `holds no certificate for the key in ${keyEnv}`);
  }
  if (ca.isRoot) return fail('nodeCaCert', `is a self-signed root CA, not a node intermediate; ${intermediateHowTo}`);
  const problem = intermediateProblem(ca.certPem, new X509Certificate(ca.certPem), trust.roots);
  if (problem !== undefined) return fail('nodeCaCert', `${problem}; ${intermediateHowTo}`);
  if (!trust.nodeIssuers.some((issuer) => issuer.raw.equals(new X509Certificate(ca.certPem).raw))) {
    return fail(
      'nodeCaCert',
      `is not listed in the trust bundle (${schedulerConfig.envNames.tlsCa}): every service would refuse the node certificates it signs; append it to the bundle on every host first`,
    );
  }
  return ca;
}
