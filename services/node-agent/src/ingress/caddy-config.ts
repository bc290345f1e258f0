// Caddy's JSON config (https://caddyserver.com/docs/json/) for a route table: one HTTP server
// routing by Host to each app's instances, and a TLS automation policy per mode. The admin
// endpoint is a Unix socket only the node agent can reach; nothing secret is in the config.
import type { IngressListen, IngressRoute, IngressTls } from './ingress-routes.js';

type Json = Record<string, unknown>;

export function caddyConfig(routes: readonly IngressRoute[], listen: IngressListen, tls: IngressTls, adminSocket: string): Json {
  const host = listen.host ?? '';
  const served = routes.filter((route) => route.hosts.length > 0);
  const server: Json = {
    listen: [`${host}:${tls.mode === 'off' ? listen.httpPort : listen.httpsPort}`],
    routes: served.map((route) => ({
      '@id': `app-${route.app}`,
      match: [{ host: [...route.hosts] }],
      handle:
        route.upstreams.length === 0
          ? [{ handler: 'static_response', status_code: 502, body: `${route.app} has no healthy instance\n` }]
          : [{ handler: 'reverse_proxy', upstreams: route.upstreams.map((dial) => ({ dial })) }],
      terminal: true,
    })),
    ...(tls.mode === 'off' ? { automatic_https: { disable: true } } : {}),
  };
  return {
    admin: { listen: `unix/${adminSocket}` },
    apps: {
      http: { http_port: listen.httpPort, https_port: listen.httpsPort, servers: { ingress: server } },
      ...(tls.mode === 'off' || served.length === 0
        ? {}
        : { tls: { automation: { policies: [{ subjects: served.flatMap((r) => r.hosts), issuers: [issuer(tls)] }] } } }),
    },
  };
}

function issuer(tls: Exclude<IngressTls, { mode: 'off' }>): Json {
  if (tls.mode === 'internal') return { module: 'internal' };
  return {
    module: 'acme',
    ca: tls.directoryUrl,
    ...(tls.email ? { email: tls.email } : {}),
    ...(tls.trustedRootsPemFile ? { trusted_roots_pem_files: [tls.trustedRootsPemFile] } : {}),
  };
}
