import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import { errnoCode } from '@shellwego/kit/errors';
import { RemoteRegistryError } from './remote-error.js';

export interface HttpGetOptions {
  headers: OutgoingHttpHeaders;
  /** PEM CAs for HTTPS; undefined trusts the system's. */
  ca?: string[];
  /** Socket inactivity that counts as unreachable. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Redirects to follow (blobs are often served from a storage host). */
  maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TLS_TRUST_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|UNABLE_TO_GET_ISSUER/;

/**
 * GETs `url`, following redirects. Credentials are only sent to the
 * origin they were meant for: a redirect to another host (a storage bucket
 * with a signed URL) loses the Authorization header. The caller consumes or
 * destroys the response body.
 */
export async function httpGet(url: URL, options: HttpGetOptions): Promise<{ response: IncomingMessage; url: URL }> {
  let current = url;
  let headers = { ...options.headers };
  for (let hop = 0; ; hop++) {
    const response = await getOnce(current, headers, options);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (!REDIRECTS.has(status) || location === undefined) return { response, url: current };
    response.resume();
    if (hop >= (options.maxRedirects ?? 5)) {
      throw new RemoteRegistryError('unavailable', `${url.host} redirected more than ${options.maxRedirects ?? 5} times`);
    }
    const next = new URL(location, current);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new RemoteRegistryError('invalid', `${url.host} redirected to an unsupported URL scheme ${next.protocol}`);
    }
    if (current.protocol === 'https:' && next.protocol === 'http:') {
      throw new RemoteRegistryError('invalid', `${url.host} redirected from HTTPS to plain HTTP (${next.host}); refusing to downgrade`);
    }
    if (next.origin !== current.origin) {
      const { authorization: _dropped, ...rest } = headers;
      headers = rest;
    }
    current = next;
  }
}

function getOnce(url: URL, headers: OutgoingHttpHeaders, options: HttpGetOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const common = { method: 'GET', headers, ...(options.signal ? { signal: options.signal } : {}) };
    const req =
      url.protocol === 'https:' ? https.request(url, { ...common, ...(options.ca ? { ca: options.ca } : {}) }, resolve) : http.request(url, common, resolve);
    req.setTimeout(options.timeoutMs, () => {
      req.destroy(new RemoteRegistryError('unavailable', `${url.host} did not answer within ${options.timeoutMs} ms`));
    });
    req.on('error', (err) => reject(describeNetworkError(err, url)));
    req.end();
  });
}

/** A connection or TLS failure as an error a person can act on. */
export function describeNetworkError(err: unknown, url: URL): unknown {
  if (err instanceof RemoteRegistryError) return err;
  if ((err as Error).name === 'AbortError') return err;
  const code = errnoCode(err) ?? '';
  if (TLS_TRUST_CODES.test(code)) {
    return new RemoteRegistryError(
      'unavailable',
      `cannot verify the TLS certificate of ${url.host} (${code}); pass the registry's CA certificate (--ca-file) or fix its certificate`,
      { cause: err },
    );
  }
  const reason = code || (err as Error).message;
  return new RemoteRegistryError('unavailable', `cannot reach ${url.protocol}//${url.host} (${reason})`, { cause: err });
}
