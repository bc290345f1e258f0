import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface TokenServerOptions {
  /** TLS of the token endpoint. */
  tls: { certPem: string; keyPem: string };
  /** The certificate (in the registry's rootcertbundle) and EC P-256 key tokens are signed with. */
  signer: { certPem: string; keyPem: string };
  issuer: string;
  service: string;
  username: string;
  password: string;
}

/**
 * A token server for the distribution registry's `auth: token` scheme, for
 * tests: checks basic credentials, then issues an ES256 JWT for the
 * requested scope with the signing certificate in the `x5c` header, which
 * distribution 2.8 verifies against its rootcertbundle. Counts requests.
 */
export class TokenServer {
  requests = 0;
  refused = 0;

  private constructor(
    private readonly server: https.Server,
    readonly realm: string,
  ) {}

  static async start(options: TokenServerOptions): Promise<TokenServer> {
    const key = createPrivateKey(options.signer.keyPem);
    const x5c = [new X509Certificate(options.signer.certPem).raw.toString('base64')];
    const expected = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
    let holder: TokenServer | undefined;
    const server = https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, (req, res) => {
      const counter = holder as TokenServer;
      counter.requests++;
      const url = new URL(req.url ?? '/', 'https://token.invalid');
      if (req.headers.authorization !== expected) {
        counter.refused++;
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'invalid credentials' }));
        return;
      }
      const access = url.searchParams.getAll('scope').flatMap((scope) => {
        const [type, name, actions] = scope.split(':');
        return type && name && actions ? [{ type, name, actions: actions.split(',') }] : [];
      });
      const now = Math.floor(Date.now() / 1000);
      const header = { typ: 'JWT', alg: 'ES256', x5c };
      const claims = {
        iss: options.issuer,
        sub: options.username,
        aud: url.searchParams.get('service') ?? options.service,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
      const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      const token = `${input}.${signature.toString('base64url')}`;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    holder = new TokenServer(server, `https://127.0.0.1:${port}/token`);
    return holder;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function b64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}
