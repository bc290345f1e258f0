import { defaultPorts, defineConfig, duration, integer, path, string, url } from '@shellwego/kit/config';
import { databaseSettings, serverSettings } from '@shellwego/kit/service';

/** Settings of the scheduler process; env vars start with SHELLWEGO_SCHEDULER_. */
export const schedulerConfig = defineConfig('SHELLWEGO_SCHEDULER', {
  ...serverSettings('scheduler', defaultPorts.scheduler),
  ...databaseSettings('scheduler'),
  heartbeatInterval: duration({ default: '10s', description: 'how often node agents are expected to send a heartbeat' }),
  heartbeatGrace: duration({
    default: '10s',
    description: 'extra time after a missed heartbeat before a node is DOWN and its instances are replaced',
  }),
  registryUrl: url({
    default: `https://127.0.0.1:${defaultPorts.registry}`,
    protocols: ['https'],
    description: 'the registry that pins image references to digests (ResolveImage)',
  }),
  registryTimeout: duration({ default: '10s', description: 'how long DeployApp waits for the registry' }),
  secretsUrl: url({
    default: `https://127.0.0.1:${defaultPorts.secrets}`,
    protocols: ['https'],
    description: 'the secrets service asked for the workspace secret names (ListWorkspaceSecretNames) when a grant must name them all',
  }),
  secretsTimeout: duration({ default: '5s', description: 'how long issuing such a grant waits for the secrets service' }),
  grantSigningKey: path({
    default: '$SHELLWEGO_HOME/pki/grant-signing.key',
    description: 'PKCS#8 PEM Ed25519 key that signs the grants sent with assignments',
  }),
  grantTtl: duration({ default: '2m', description: 'lifetime of a grant (at most 10m); a fresh one goes with every start and refresh' }),
  nodeCaCert: path({
    default: '$SHELLWEGO_HOME/pki/node-ca.crt',
    description:
      'PEM certificate of the node-issuing intermediate CA (path length 0, signed by the cluster root, listed in TLS_CA); sent to nodes with their certificates',
  }),
  nodeCaKey: path({
    default: '$SHELLWEGO_HOME/pki/node-ca.key',
    description: "PEM key of that intermediate; signs node certificates at join and renewal. Never the root CA's key: start-up refuses it",
  }),
  joinAuditInterval: duration({
    default: '60s',
    description: 'refused joins (bad tokens, sent without a certificate) are written to join_attempt as one row per source, outcome and token per interval',
  }),
  nodeCertValidity: duration({ default: '24h', description: 'lifetime of node certificates issued at join and renewal' }),
  leaderPollInterval: duration({
    default: '1s',
    description: 'how often a standby tries to become active (Postgres only) and the leader checks its lock',
  }),
  stopGracePeriod: duration({ default: '10s', description: 'time between SIGTERM and power-off when an instance is stopped' }),
  clusterCidr: string({
    default: '10.88.0.0/16',
    description: "the IPv4 range the nodes' instance subnets are cut from (one subnet per node, given at join); must not overlap the hosts' own networks",
  }),
  nodeSubnetPrefix: integer({
    default: 24,
    min: 1,
    max: 30,
    description: "the prefix length of each node's subnet (24: 253 instances per node, 256 nodes in a /16)",
  }),
});
