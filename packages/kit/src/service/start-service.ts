import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RefusalListener } from '../auth/index.js';
import type { ConfigDefinition, Setting, Typed } from '../config/index.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { errnoCode } from '../errors/errno.js';
import { createLogger, type Logger } from '../log/index.js';
import { createMetricsRegistry, type MetricsRegistry, type MetricsServer, rpcMetrics, serveMetrics } from '../metrics/index.js';
import { displayName, pemCertificates, type RevocationFeed, RevocationList, TrustBundle, TrustBundleError } from '../pki/index.js';
import { type RunningServer, type ServiceRegistration, serve, type TlsMaterial } from '../rpc/index.js';
import { serverTracingInterceptor, startTracing } from '../tracing/index.js';
import { schedulerRevocationFeed } from './scheduler-revocation-feed.js';
import type { serverSettings } from './service-settings.js';

type ServerSettings = ReturnType<typeof serverSettings>;

export interface ServiceContext<C> {
  readonly config: C;
  readonly logger: Logger;
  readonly tls: TlsMaterial;
  /** Aborted when shutdown begins; background loops stop on it. */
  readonly shuttingDown: AbortSignal;
  /** The process's Prometheus registry: the domain registers its metrics here. */
  readonly metrics: MetricsRegistry;
}

/** What a service's domain code hands back to the bootstrap. */
export interface ServiceParts {
  readonly services: readonly ServiceRegistration[];
  /** Releases the domain's resources (database, timers) after the server drained. */
  readonly close?: () => Promise<void>;
  /** Hears of every call refused to a caller with a verified certificate, before the caller gets its error. */
  readonly onRefused?: RefusalListener;
  /** Where revoked certificates come from besides the file, when the domain knows (the scheduler: its database). */
  readonly revocations?: RevocationFeed;
  /** Whether messages may be gzip or brotli compressed (default true); see ServeOptions.compression. */
  readonly compression?: boolean;
}

export interface StartServiceOptions<S extends ServerSettings & Record<string, Setting<unknown>>> {
  /** The process name: "secrets", "scheduler", ... */
  readonly name: string;
  readonly definition: ConfigDefinition<S>;
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
  readonly setup: (context: ServiceContext<Typed<S>>) => Promise<ServiceParts>;
}

export interface StartedService<C> {
  readonly config: C;
  readonly server: RunningServer;
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  /** http://host:port/metrics; undefined when switched off or the port could not be opened. */
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/** config -> logger -> TLS -> domain setup -> serve, metrics. Errors say which setting or file is wrong. */
export async function startService<S extends ServerSettings & Record<string, Setting<unknown>>>(
  options: StartServiceOptions<S>,
): Promise<StartedService<Typed<S>>> {
  const env = options.env ?? process.env;
  const config = loadConfig(options.definition, { env });
  const logger = options.logger ?? createLogger({ service: options.name, env });
  const tracing = await startTracing({ serviceName: options.name, env });
  if (tracing.exporting) logger.info('exporting traces over OTLP (OTEL_* settings)');
  const tls = await readTls(config, options.definition.envNames);
  const revoked = await RevocationList.fromFile(config.revokedCerts, { watch: true });
  // Re-read while running, so node intermediates are introduced and retired without a restart.
  const trust = await readTrust(config.tlsCa, options.definition.envNames.tlsCa, logger);
  const shutdown = new AbortController();
  const metrics = createMetricsRegistry();
  const rpc = rpcMetrics(metrics);
  const parts = await options.setup({ config, logger, tls, shuttingDown: shutdown.signal, metrics });
  const feed = parts.revocations ?? (config.revocationFeed === undefined ? undefined : schedulerRevocationFeed(config.revocationFeed, tls));
  if (feed === undefined) {
    logger.warn(
      { setting: options.definition.envNames.revocationFeed },
      'following no revocation feed: certificates of nodes removed from the cluster are refused here only once listed in the revocation file or expired',
    );
  } else {
    revoked.follow(feed);
    logger.info({ feed: feed.name }, 'following revoked certificates');
  }
  let server: RunningServer;
  try {
    server = await serve({
      name: options.name,
      host: config.listen.host,
      port: config.listen.port,
      tls,
      revoked,
      trust,
      logger,
      services: parts.services,
      readMaxBytes: config.maxMessageBytes,
      interceptors: [serverTracingInterceptor(), rpc.interceptor],
      countRefused: (method, code, seconds) => rpc.refused(method, code, seconds),
      limits: {
        maxConcurrentStreams: config.maxConcurrentStreams,
        maxConnectionsPerPeer: config.maxConnectionsPerPeer,
        maxHeaderListBytes: config.maxHeaderListBytes,
        refusalLogIntervalMs: config.refusalLogInterval,
      },
      ...(parts.onRefused ? { onRefused: parts.onRefused } : {}),
      ...(parts.compression === undefined ? {} : { compression: parts.compression }),
    });
  } catch (error) {
    await parts.close?.();
    await tracing.shutdown();
    throw error;
  }
  const metricsServer = await serveMetricsIfWanted(metrics, config.metricsListen, { tls, revoked, trust }, logger, options.definition.envNames.metricsListen);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      shutdown.abort();
      await server.close();
      await metricsServer?.close();
      await parts.close?.();
      revoked.close();
      trust.close();
      await tracing.shutdown();
    })());
  return { config, server, logger, metrics, metricsUrl: metricsServer?.url, stop };
}

async function readTls(config: { tlsCa: string; tlsCert: string; tlsKey: string }, envNames: Record<string, string>): Promise<TlsMaterial> {
  const read = async (key: 'tlsCa' | 'tlsCert' | 'tlsKey') => {
    try {
      return await readFile(config[key], 'utf8');
    } catch (error) {
      const code = errnoCode(error) ?? 'unreadable';
      throw new ConfigError([
        {
          setting: key,
          envVar: envNames[key],
          source: 'default',
          message: `${envNames[key] ?? key}: cannot read ${config[key]} (${code}); run \`npm start\` once to create a development PKI, or point ${envNames[key]} at the PEM file`,
        },
      ]);
    }
  };
  const tls = { caPem: await read('tlsCa'), certPem: await read('tlsCert'), keyPem: await read('tlsKey') };
  refuseCaIdentity(tls.certPem, envNames.tlsCert ?? 'tlsCert');
  return tls;
}

/**
 * A process serves and calls with a leaf certificate of its own. Given a CA's certificate and key
 * instead (the root's, or the scheduler's node intermediate), it would hold the power to sign
 * identities: refuse to start.
 */
function refuseCaIdentity(certPem: string, envName: string): void {
  const [leafPem] = pemCertificates(certPem);
  if (leafPem === undefined || !new X509Certificate(leafPem).ca) return;
  throw new ConfigError([
    {
      setting: 'tlsCert',
      envVar: envName,
      source: 'default',
      message: `${envName}: is a CA certificate (${displayName(new X509Certificate(leafPem).subject)}); a process holds only its own leaf certificate and key, never a CA's: issue one with \`shellwego cert issue\` and keep CA keys off this host`,
    },
  ]);
}

async function readTrust(path: string, envName: string | undefined, logger: Logger): Promise<TrustBundle> {
  try {
    return await TrustBundle.fromFile(path, {
      watch: true,
      onReload: (outcome) =>
        'problem' in outcome
          ? logger.error({ setting: envName, problem: outcome.problem }, 'trust bundle not re-read')
          : logger.info({ setting: envName, nodeIssuers: outcome.nodeIssuers }, 'trust bundle re-read'),
    });
  } catch (error) {
    if (!(error instanceof TrustBundleError)) throw error;
    throw new ConfigError([{ setting: 'tlsCa', envVar: envName, source: 'default', message: `${envName ?? 'tlsCa'}: ${error.message}` }]);
  }
}

/** Metrics are for watching a service, not for running it: a taken port is logged, not fatal. */
async function serveMetricsIfWanted(
  registry: MetricsRegistry,
  listen: { host: string; port: number } | undefined,
  access: { tls: TlsMaterial; revoked: RevocationList; trust: TrustBundle },
  logger: Logger,
  envName: string,
): Promise<MetricsServer | undefined> {
  if (listen === undefined) return undefined;
  try {
    const server = await serveMetrics(registry, { ...listen, ...access });
    logger.info({ url: server.url }, 'metrics served');
    return server;
  } catch (error) {
    logger.error({ err: error instanceof Error ? error.message : String(error), listen }, `cannot serve metrics; running without them (set ${envName})`);
    return undefined;
  }
}
