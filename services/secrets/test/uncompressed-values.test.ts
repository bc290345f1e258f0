// Resolved values leave the real secrets process uncompressed, even to a client that offers gzip
// and brotli: a compressed response would put each value through zlib's buffers on both ends,
// copies nothing can wipe (the README's table of secret copies relies on this).
import { randomBytes } from 'node:crypto';
import type { Interceptor } from '@connectrpc/connect';
import { SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { addClientInterceptor } from '@shellwego/kit/rpc';
import { TestPlatform } from '@shellwego/testing/platform';
import { secretsClients } from '@shellwego/testing/secrets-clients';
import { afterAll, describe, expect, it } from 'vitest';

let platform: TestPlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

describe('ResolveSecrets responses', () => {
  it('are never compressed, though the client accepts gzip and the response is well over 1 KiB', { timeout: 120_000 }, async () => {
    const seen: Array<{ offered: string | null; encoding: string | null }> = [];
    const record: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (req.method.name === 'ResolveSecrets') seen.push({ offered: req.header.get('grpc-accept-encoding'), encoding: res.header.get('grpc-encoding') });
      return res;
    };
    addClientInterceptor(record);
    platform = await TestPlatform.start({ services: ['secrets'] });
    const clients = await secretsClients(platform);
    // Hex text compresses to about half: gzip would be chosen for it.
    const value = Buffer.from(randomBytes(4096).toString('hex'));
    await clients.admin.setSecret({ scope: { kind: SecretScopeKind.APP, app: 'shop' }, name: 'BIG', value });

    const resolved = await clients.node.resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['BIG'] }) });

    expect(Buffer.from(resolved.secrets[0]?.value ?? []).equals(value)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.offered).toContain('gzip');
    expect(seen[0]?.encoding ?? 'identity').toBe('identity');
  });
});
