import { readFile } from 'node:fs/promises';
import type { Client } from '@connectrpc/connect';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { type GrantAudienceName, loadGrantSigningKey, signGrant } from '@shellwego/kit/grant';
import type { TlsMaterial } from '@shellwego/kit/rpc';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { TestPlatform } from './platform.js';

export const IMAGE_DIGEST = `sha256:${'cd'.repeat(32)}`;

/** Clients and grants for a TestPlatform running the secrets service. */
export interface SecretsClients {
  readonly admin: Client<typeof SecretsService>;
  /** The dev PKI's node certificate: spiffe://shellwego/node/local. */
  readonly node: Client<typeof SecretsService>;
  readonly nodeTls: TlsMaterial;
  /** A grant signed with the platform's grant key (as the scheduler would). */
  grant(
    claims: { app: string; secretNames: readonly string[]; nodeId?: string; instanceId?: string; ttlMs?: number; audience?: GrantAudienceName },
    now?: Date,
  ): Grant;
}

export async function secretsClients(platform: TestPlatform): Promise<SecretsClients> {
  const url = platform.url('secrets');
  const paths = platform.pki.processes['node-agent'];
  const nodeTls = { caPem: platform.admin.caPem, certPem: await readFile(paths.cert, 'utf8'), keyPem: await readFile(paths.key, 'utf8') };
  const signing = loadGrantSigningKey(await readFile(platform.pki.grantSigningKey, 'utf8'));
  return {
    admin: createMtlsClient(SecretsService, { baseUrl: url, server: expectedService('secrets'), tls: platform.admin }),
    node: createMtlsClient(SecretsService, { baseUrl: url, server: expectedService('secrets'), tls: nodeTls }),
    nodeTls,
    grant: (claims, now) =>
      signGrant(
        {
          audience: claims.audience ?? 'secrets',
          instanceId: claims.instanceId ?? 'i-1',
          app: claims.app,
          nodeId: claims.nodeId ?? 'local',
          secretNames: claims.secretNames,
          imageDigest: IMAGE_DIGEST,
          ttlMs: claims.ttlMs ?? 60_000,
        },
        signing,
        now,
      ),
  };
}
