import { database, duration, hostPort, hostPortOrOff, integer, optional, path, pathList, urlList } from '../config/index.js';
import { DEFAULT_CONNECTION_LIMITS } from '../rpc/connection-limits.js';

/**
 * The settings every shellwego server process has, under its own env prefix
 * (e.g. SHELLWEGO_SECRETS_LISTEN). Defaults match what `npm start` creates.
 */
export function serverSettings(process: string, defaultPort: number) {
  return {
    listen: hostPort({ default: `127.0.0.1:${defaultPort}`, description: 'address to serve on, host:port' }),
    tlsCa: path({
      default: '$SHELLWEGO_HOME/pki/ca.crt',
      description: 'PEM trust bundle: the cluster root CA, then each node-issuing intermediate trusted now (re-read while running; removing one retires it)',
    }),
    tlsCert: path({ default: `$SHELLWEGO_HOME/pki/services/${process}.crt`, description: "PEM of this process's certificate" }),
    tlsKey: path({ default: `$SHELLWEGO_HOME/pki/services/${process}.key`, description: "PEM of this process's private key" }),
    revokedCerts: path({ default: '$SHELLWEGO_HOME/pki/revoked.txt', description: 'revoked certificate serials, one hex serial per line' }),
    revocationFeed: optional(
      urlList({
        description:
          'scheduler URLs (comma-separated) whose revoked node certificates this process follows, polled every second; while none has answered for 15 s, node and user certificates are refused',
      }),
    ),
    maxMessageBytes: integer({ default: 4 * 1024 * 1024, min: 1024, max: 256 * 1024 * 1024, description: 'largest request message accepted' }),
    maxConcurrentStreams: integer({
      default: DEFAULT_CONNECTION_LIMITS.maxConcurrentStreams,
      min: 1,
      max: 10_000,
      description: 'calls open at once on one connection (HTTP/2 streams); more are refused with REFUSED_STREAM and gRPC clients queue them',
    }),
    maxConnectionsPerPeer: integer({
      default: DEFAULT_CONNECTION_LIMITS.maxConnectionsPerPeer,
      min: 1,
      max: 100_000,
      description: 'connections open at once from one IP address; more are closed before the TLS handshake',
    }),
    maxHeaderListBytes: integer({
      default: DEFAULT_CONNECTION_LIMITS.maxHeaderListBytes,
      min: 1024,
      max: 1024 * 1024,
      description: 'largest request header list; a larger one resets the call',
    }),
    refusalLogInterval: duration({
      default: `${DEFAULT_CONNECTION_LIMITS.refusalLogIntervalMs / 1000}s`,
      description: 'calls refused to callers without a usable certificate are logged as one line of counts per interval',
    }),
    // The RPC port plus 2000 (7401 -> 9401), so every service of one host has its own by default.
    metricsListen: hostPortOrOff({
      default: `127.0.0.1:${defaultPort + 2000}`,
      description: 'Prometheus metrics over plain HTTP (GET /metrics), host:port; port 0 picks a free one; "off" serves none',
    }),
  };
}

/** The database of a control service: a postgres:// URL or a PGlite data directory. */
export function databaseSettings(process: string) {
  return {
    database: database({
      default: `$SHELLWEGO_HOME/${process}/db`,
      description: 'postgres://user@host/db, or a directory for the embedded PGlite database',
    }),
  };
}

/**
 * The scheduler's grant public key(s), for services that check grants. Several
 * files during a key rollover: add the new key here, switch the scheduler,
 * then drop the old one.
 */
export function grantVerifierSettings() {
  return {
    grantPublicKeys: pathList({
      default: '$SHELLWEGO_HOME/pki/grant-signing.pub',
      description: "PEM file(s) of the scheduler's Ed25519 grant public key, comma-separated during a key rollover",
    }),
  };
}
