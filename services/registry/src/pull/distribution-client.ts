import type { IncomingMessage } from 'node:http';
import { rootCertificates } from 'node:tls';
import type { RemoteReference } from '../image-reference.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { httpGet } from './http-get.js';
import { RemoteRegistryError } from './remote-error.js';
import { type AuthChallenge, parseWwwAuthenticate } from './www-authenticate.js';

export interface RegistryCredentials {
  username: string;
  /** Owned by the caller, which wipes it after the pull. */
  password: Uint8Array;
}

export interface DistributionClientOptions {
  remote: RemoteReference;
  /** Plain HTTP; only for loopback registries. */
  insecureHttp: boolean;
  /** Extra CA to trust besides the system's. */
  caPem?: string;
  credentials?: RegistryCredentials;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface FetchedManifest {
  bytes: Buffer;
  /** The Content-Type the registry declared. */
  mediaType: string;
  /** Docker-Content-Digest, when sent. */
  digestHeader?: string;
}

const MAX_ERROR_BODY = 64 * 1024;

/**
 * A client of the OCI distribution API for one repository: GET /v2/,
 * manifests and blobs, with anonymous, basic and bearer-token auth. A 401
 * is answered once per request with the challenge's scheme: basic sends
 * the credentials, bearer fetches a token from the challenge's realm for
 * its service and scope (with the credentials as basic auth, when given)
 * and caches it per scope.
 */
export class DistributionClient {
  private readonly base: URL;
  private readonly ca: string[] | undefined;
  private authorization: string | undefined;
  private readonly tokens = new Map<string, string>();

  constructor(private readonly options: DistributionClientOptions) {
    this.base = new URL(`${options.insecureHttp ? 'http' : 'https'}://${options.remote.host}`);
    this.ca = options.caPem ? [...rootCertificates, options.caPem] : undefined;
  }

  get host(): string {
    return this.options.remote.host;
  }

  /** GET /v2/: checks the endpoint speaks the distribution API and learns its auth scheme. */
  async ping(): Promise<void> {
    const response = await this.get('/v2/', {});
    response.resume();
  }

  async manifest(reference: string): Promise<FetchedManifest> {
    const response = await this.get(`/v2/${this.options.remote.repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT.join(', ') });
    const declared = Number(response.headers['content-length'] ?? 0);
    if (declared > MAX_MANIFEST_BYTES) {
      response.destroy();
      throw new RemoteRegistryError('invalid', `the manifest of ${this.describe(reference)} is ${declared} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
    }
    const bytes = await readBody(
      response,
      MAX_MANIFEST_BYTES,
      () => new RemoteRegistryError('invalid', `the manifest of ${this.describe(reference)} is larger than ${MAX_MANIFEST_BYTES} bytes`),
    );
    const digestHeader = header(response, 'docker-content-digest');
    return {
      bytes,
      mediaType: (header(response, 'content-type') ?? '').split(';')[0]?.trim() ?? '',
      ...(digestHeader ? { digestHeader } : {}),
    };
  }

  /** The blob's body (redirects followed); the caller reads and verifies it. */
  async blob(digest: string): Promise<IncomingMessage> {
    return this.get(`/v2/${this.options.remote.repository}/blobs/${digest}`, {}, 5);
  }

  describe(reference = this.options.remote.digest ?? this.options.remote.tag ?? 'latest'): string {
    const sep = reference.startsWith('sha256:') ? '@' : ':';
    return `${this.options.remote.host}/${this.options.remote.repository}${sep}${reference}`;
  }

  private async get(path: string, headers: Record<string, string>, maxRedirects = 0): Promise<IncomingMessage> {
    const url = new URL(path, this.base);
    for (let attempt = 0; ; attempt++) {
      const { response } = await httpGet(url, {
        headers: { ...headers, ...(this.authorization ? { authorization: this.authorization } : {}), 'user-agent': 'shellwego-registry' },
        ...(this.ca ? { ca: this.ca } : {}),
        timeoutMs: this.options.timeoutMs,
        maxRedirects,
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      });
      const status = response.statusCode ?? 0;
      if (status === 200) return response;
      const detail = await errorDetail(response);
      if (status === 401 && attempt === 0) {
        const challenge = parseWwwAuthenticate(header(response, 'www-authenticate') ?? '')[0];
        if (challenge && (await this.authorize(challenge))) continue;
      }
      throw this.statusError(status, path, detail);
    }
  }

  /** Prepares the Authorization header a challenge asks for; false when there is nothing to answer it with. */
  private async authorize(challenge: AuthChallenge): Promise<boolean> {
    const credentials = this.options.credentials;
    if (challenge.scheme === 'basic') {
      if (!credentials) return false;
      this.assertSafeToSend(this.base);
      this.authorization = `Basic ${basicToken(credentials)}`;
      return true;
    }
    if (challenge.scheme !== 'bearer') {
      throw new RemoteRegistryError(
        'unauthenticated',
        `${this.host} asks for ${challenge.scheme} authentication, which is not supported (basic and bearer are)`,
      );
    }
    const scope = challenge.params.scope ?? `repository:${this.options.remote.repository}:pull`;
    const cached = this.tokens.get(scope);
    if (cached && cached !== this.authorization) {
      this.authorization = cached;
      return true;
    }
    this.authorization = await this.fetchToken(challenge, scope);
    this.tokens.set(scope, this.authorization);
    return true;
  }

  private async fetchToken(challenge: AuthChallenge, scope: string): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm || !URL.canParse(realm)) throw new RemoteRegistryError('unauthenticated', `${this.host} asks for a bearer token without a usable realm`);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const credentials = this.options.credentials;
    if (credentials) this.assertSafeToSend(url);
    const { response } = await httpGet(url, {
      headers: { 'user-agent': 'shellwego-registry', ...(credentials ? { authorization: `Basic ${basicToken(credentials)}` } : {}) },
      ...(this.ca ? { ca: this.ca } : {}),
      timeoutMs: this.options.timeoutMs,
      maxRedirects: 0,
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    });
    const status = response.statusCode ?? 0;
    if (status !== 200) {
      const detail = await errorDetail(response);
      if (status === 401 || status === 403) {
        throw new RemoteRegistryError(
          'unauthenticated',
          `the token service ${url.host} refused ${credentials ? `the credentials of ${credentials.username}` : 'an anonymous token'} for ${scope}${detail ? ` (${detail})` : ''}`,
        );
      }
      throw new RemoteRegistryError('unavailable', `the token service ${url.host} answered HTTP ${status}${detail ? ` (${detail})` : ''}`);
    }
    const body = await readBody(
      response,
      MAX_ERROR_BODY * 16,
      () => new RemoteRegistryError('invalid', `the token service ${url.host} sent an oversized answer`),
    );
    let token: unknown;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = parsed.token ?? parsed.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') throw new RemoteRegistryError('invalid', `the token service ${url.host} answered without a token`);
    return `Bearer ${token}`;
  }

  /** Credentials go only over HTTPS, or plain HTTP to this machine. */
  private assertSafeToSend(url: URL): void {
    if (url.protocol === 'https:' || isLoopbackHost(url.hostname)) return;
    throw new RemoteRegistryError('invalid', `refusing to send credentials over plain HTTP to ${url.host}`);
  }

  private statusError(status: number, path: string, detail: string): RemoteRegistryError {
    const what = path === '/v2/' ? this.host : this.describe(decodeURIComponent(path.split('/').pop() ?? ''));
    const suffix = detail ? `: ${detail}` : '';
    switch (status) {
      case 401:
        return new RemoteRegistryError(
          'unauthenticated',
          this.options.credentials
            ? `${this.host} refused the credentials of ${this.options.credentials.username}${suffix}`
            : `${this.host} requires credentials (pass --username and --password-stdin)${suffix}`,
        );
      case 403:
        return new RemoteRegistryError('denied', `${this.host} denied access to ${what}${suffix}`);
      case 404:
        return new RemoteRegistryError(
          'not-found',
          path === '/v2/' ? `${this.host} does not serve the registry API at /v2/` : `${what} is not in ${this.host}${suffix}`,
        );
      default:
        if (status === 429 || status >= 500) return new RemoteRegistryError('unavailable', `${this.host} answered HTTP ${status} for ${what}${suffix}`);
        return new RemoteRegistryError('invalid', `${this.host} answered HTTP ${status} for ${what}${suffix}`);
    }
  }
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function basicToken(credentials: RegistryCredentials): string {
  const raw = Buffer.concat([Buffer.from(`${credentials.username}:`, 'utf8'), credentials.password]);
  try {
    return raw.toString('base64');
  } finally {
    raw.fill(0);
  }
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(response: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      response.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The registry's own words from an error body ({"errors":[{"code","message"}]}), shortened. */
async function errorDetail(response: IncomingMessage): Promise<string> {
  let body: Buffer;
  try {
    body = await readBody(response, MAX_ERROR_BODY, () => new Error('long'));
  } catch {
    return '';
  }
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    if (first)
      return [first.code, first.message]
        .filter((s) => typeof s === 'string' && s)
        .join(' ')
        .slice(0, 300);
  } catch {
    return '';
  }
  return '';
}
