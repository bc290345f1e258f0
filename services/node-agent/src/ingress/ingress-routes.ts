// What the node's edge proxy serves: each app's host names and the instance addresses behind them,
// and how certificates are obtained. Turned into Caddy's JSON config by caddy-config.ts.

/** One app as the edge serves it. */
export interface IngressRoute {
  readonly app: string;
  /** Host names the app answers at, e.g. "web.apps.example.com" and its custom domains. */
  readonly hosts: readonly string[];
  /** `address:port` of each HEALTHY instance; an app with none answers 502. */
  readonly upstreams: readonly string[];
}

/** How the edge gets certificates for the hosts it serves. */
export type IngressTls =
  /** An ACME CA (Let's Encrypt, or Pebble in tests); `trustedRootsPemFile` is the CA of its directory's HTTPS, when not a public one. */
  | { readonly mode: 'acme'; readonly directoryUrl: string; readonly email?: string; readonly trustedRootsPemFile?: string }
  /** Caddy's own local CA: development, when no ACME server is configured. */
  | { readonly mode: 'internal' }
  /** Plain HTTP only, on request. */
  | { readonly mode: 'off' };

export interface IngressListen {
  /** Port for HTTPS (and, with TLS on, HTTP redirects and ACME HTTP challenges on httpPort). */
  readonly httpsPort: number;
  readonly httpPort: number;
  /** Address the edge listens on; default every address. */
  readonly host?: string;
}
