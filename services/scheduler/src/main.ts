import { hostname } from 'node:os';
import { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { openDatabase } from '@shellwego/kit/db';
import { implement } from '@shellwego/kit/rpc';
import { runService } from '@shellwego/kit/service';
import { appService } from './api/app-service.js';
import { nodeService } from './api/node-service.js';
import { schedulerConfig } from './config.js';
import { GrantIssuer } from './leader/grant-issuer.js';
import { RegistryImageResolver } from './leader/image-resolver.js';
import { Leader } from './leader/leader.js';
import { Leadership } from './leader/leadership.js';
import { SecretsServiceWorkspace } from './leader/workspace-secrets.js';
import { createSchedulerMetrics } from './metrics/scheduler-metrics.js';
import { checkSettings, loadSigningMaterial } from './settings-check.js';
import { EventFeed } from './store/event-feed.js';
import { JoinRefusals } from './store/join-refusals.js';
import { JoinTokens } from './store/join-tokens.js';
import { migrations } from './store/migrations.js';
import { NodeCertificateLedger } from './store/node-certificate-ledger.js';
import { NodeCertificates } from './store/node-certificates.js';
import { NodeSubnets } from './store/node-subnets.js';
import { PgListener } from './store/pg-listener.js';
import type { SchedulerTables } from './store/tables.js';
import { EVENTS_CHANNEL } from './store/write-transaction.js';

// Without a notification (lost, or PGlite), new events still reach watchers this soon.
const EVENT_POLL_MS = 1_000;

await runService({
  name: 'scheduler',
  definition: schedulerConfig,
  async setup({ config, logger, tls, shuttingDown, metrics }) {
    checkSettings(config);
    const keys = await loadSigningMaterial(config, tls.caPem);
    const database = await openDatabase<SchedulerTables>({ url: config.database, schema: 'scheduler', migrations, logger, metrics });
    const { db, dialect } = database;
    const feed = new EventFeed(db, logger, EVENT_POLL_MS);
    await feed.start();
    const postgresUrl = dialect === 'postgres' ? config.database : undefined;
    const listener = postgresUrl === undefined ? undefined : new PgListener(postgresUrl, EVENTS_CHANNEL, () => feed.wake(), logger);
    listener?.start();
    const grants = new GrantIssuer(keys.grantKey, config.grantTtl);
    const subnets = new NodeSubnets({ clusterCidr: config.clusterCidr, nodePrefix: config.nodeSubnetPrefix });
    const workspaceSecrets = new SecretsServiceWorkspace(config.secretsUrl, tls, config.secretsTimeout);
    // Reads the leader through `leadership`, declared below: scrapes come only after setup.
    const schedulerMetrics = createSchedulerMetrics(metrics, () => leadership.leader);
    const leadership = new Leadership({
      postgresUrl,
      db,
      pollMs: config.leaderPollInterval,
      logger,
      holder: `${hostname()}/${process.pid}`,
      url: `https://${config.listen.host}:${config.listen.port}`,
      elect: () =>
        Leader.start({
          db,
          dialect,
          feed,
          grants,
          subnets,
          workspaceSecrets,
          logger,
          heartbeatIntervalMs: config.heartbeatInterval,
          heartbeatGraceMs: config.heartbeatGrace,
          stopGraceMs: config.stopGracePeriod,
          metrics: schedulerMetrics,
        }),
    });
    try {
      await leadership.start();
    } catch (error) {
      await listener?.close();
      feed.close();
      await database.close();
      throw error;
    }
    // Standbys take over as soon as the lock is free, not after the drain.
    shuttingDown.addEventListener('abort', () => void leadership.stop());
    const joinRefusals = new JoinRefusals(db, logger, config.joinAuditInterval);
    const ledger = new NodeCertificateLedger(db);
    const deps = {
      subnets,
      db,
      leadership,
      feed,
      tokens: new JoinTokens(db),
      joinRefusals,
      certificates: new NodeCertificates(keys.nodeCa, tls.caPem, config.nodeCertValidity),
      ledger,
      images: new RegistryImageResolver(config.registryUrl, tls, config.registryTimeout),
      logger,
      shuttingDown,
    };
    return {
      services: [implement(AppService, appService(deps)), implement(NodeService, nodeService(deps))],
      revocations: { name: 'the scheduler database', fetch: () => ledger.revokedSerials() },
      close: async () => {
        await joinRefusals.flush();
        await leadership.stop();
        await listener?.close();
        feed.close();
        await database.close();
      },
    };
  },
});
