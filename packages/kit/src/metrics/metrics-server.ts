// GET /metrics in the Prometheus text format on a listener of its own, over mutual TLS like every
// other listener: the scraper presents a certificate from the cluster CA naming a user with role
// `metrics` (a monitoring system) or `admin`. Metrics carry no secrets, tokens or workload
// output, but they do describe the cluster, so nobody else reads them.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ConnectError } from '@connectrpc/connect';
import type { Registry } from 'prom-client';
import { describeIdentity } from '../auth/access-policy.js';
import { authenticatePeer } from '../auth/authenticate-peer.js';
import { peerCertificateOf } from '../pki/peer-certificate.js';
import type { RevocationList } from '../pki/revocation-list.js';
import { TrustBundle } from '../pki/trust-bundle.js';
import type { TlsMaterial } from '../rpc/serve.js';

/** The user roles that may scrape metrics. */
export const METRICS_ROLES: readonly string[] = ['metrics', 'admin'];

export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  /** The process's own certificate and the cluster CA that scrapers' certificates chain to. */
  readonly tls: TlsMaterial;
  readonly revoked: RevocationList;
  /** Which CA may sign which kind of principal; default the bundle `tls.caPem`. */
  readonly trust?: TrustBundle;
}

export interface MetricsServer {
  /** https://host:port/metrics */
  readonly url: string;
  close(): Promise<void>;
}

export async function serveMetrics(registry: Registry, options: MetricsServerOptions): Promise<MetricsServer> {
  const trust = options.trust ?? TrustBundle.parse(options.tls.caPem);
  const server: Server = createServer(
    // The certificate is checked per request below, so a refused scraper learns why.
    { ca: options.tls.caPem, cert: options.tls.certPem, key: options.tls.keyPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (req, res) => {
      const refusal = refusalOf(req.socket as TLSSocket, options.revoked, trust);
      if (refusal !== undefined) {
        res.writeHead(refusal.status, { 'content-type': 'text/plain' }).end(`${refusal.message}\n`);
        return;
      }
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) =>
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${error instanceof Error ? error.message : String(error)}\n`),
      );
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `https://${shownHost}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function refusalOf(socket: TLSSocket, revoked: RevocationList, trust: TrustBundle): { status: 401 | 403; message: string } | undefined {
  let identity: ReturnType<typeof authenticatePeer>;
  try {
    identity = authenticatePeer(peerCertificateOf(socket, trust), revoked, false);
  } catch (error) {
    return { status: 401, message: ConnectError.from(error).rawMessage };
  }
  if (identity.kind === 'user' && identity.roles.some((role) => METRICS_ROLES.includes(role))) return undefined;
  return {
    status: 403,
    message: `${describeIdentity(identity)} may not read metrics; allowed: users with role ${METRICS_ROLES.join(' or ')} (shellwego cert issue --user prometheus --role metrics)`,
  };
}
