// Grants are scoped, checked by the real secrets process: a grant the scheduler issued for the
// registry (an instance's rootfs grant) reads no secret, and neither does an expired one.
import { Code, ConnectError } from '@connectrpc/connect';
import { SecretScopeKind } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { TestPlatform } from '@shellwego/testing/platform';
import { secretsClients } from '@shellwego/testing/secrets-clients';
import { afterAll, describe, expect, it } from 'vitest';

let platform: TestPlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

describe('grants shown to the secrets service', () => {
  it('refuses a registry grant and an expired grant, and serves the instance its own secrets grant', { timeout: 60_000 }, async () => {
    platform = await TestPlatform.start({ services: ['secrets'] });
    const clients = await secretsClients(platform);
    const value = Buffer.from('s3cret-value');
    await clients.admin.setSecret({ scope: { kind: SecretScopeKind.APP, app: 'shop' }, name: 'DB_PASSWORD', value });
    const resolve = (grant: ReturnType<typeof clients.grant>) =>
      clients.node.resolveSecrets({ grant }).then(
        (res) => res,
        (error: unknown) => ConnectError.from(error),
      );

    const registryGrant = await resolve(clients.grant({ app: 'shop', secretNames: ['DB_PASSWORD'], audience: 'registry' }));
    expect(registryGrant).toBeInstanceOf(ConnectError);
    expect((registryGrant as ConnectError).code).toBe(Code.PermissionDenied);
    expect((registryGrant as ConnectError).rawMessage).toMatch(/^grant refused: the grant for instance i-1 is for the registry service, not secrets/);

    const threeMinutesAgo = new Date(Date.now() - 3 * 60_000);
    const expired = await resolve(clients.grant({ app: 'shop', secretNames: ['DB_PASSWORD'], ttlMs: 2 * 60_000 }, threeMinutesAgo));
    expect(expired).toBeInstanceOf(ConnectError);
    expect((expired as ConnectError).code).toBe(Code.PermissionDenied);
    expect((expired as ConnectError).rawMessage).toMatch(/^grant refused: the grant for instance i-1 expired at /);

    const own = await resolve(clients.grant({ app: 'shop', secretNames: ['DB_PASSWORD'] }));
    expect(own).not.toBeInstanceOf(ConnectError);
    expect(Buffer.from((own as { secrets: { value: Uint8Array }[] }).secrets[0]?.value ?? []).equals(value)).toBe(true);

    // Each refusal is audited with its reason code, and no value appears in the audit.
    const audit = await clients.admin.listAuditEvents({});
    const reasons = audit.events.map((e) => e.reason.split(':')[0]).filter((reason) => reason !== '');
    expect(reasons).toEqual(expect.arrayContaining(['wrong-audience', 'expired']));
  });
});
