// SecretsService.ResolveSecrets with an instance's grant, right before the values go into the
// VM. The values stay in the response's own buffers, wrapped as SecretBytes, and the caller
// wipes them as soon as they are delivered.
import { type Client, Code, ConnectError } from '@connectrpc/connect';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import type { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { SecretBytes } from '@shellwego/kit/secret-bytes';

const RESOLVE_TIMEOUT_MS = 15_000;

/** Name -> value; empty without a call when the instance has no secrets. */
export async function resolveSecrets(
  client: Client<typeof SecretsService>,
  grant: Grant | undefined,
  names: readonly string[],
): Promise<Map<string, SecretBytes>> {
  const values = new Map<string, SecretBytes>();
  if (names.length === 0) return values;
  if (grant === undefined) throw new ConnectError('the assignment carries no grant, so its secrets cannot be resolved', Code.FailedPrecondition);
  const response = await client.resolveSecrets({ grant }, { timeoutMs: RESOLVE_TIMEOUT_MS });
  for (const secret of response.secrets) values.set(secret.name, SecretBytes.adopt(secret.value));
  const missing = names.filter((name) => !values.has(name));
  if (missing.length > 0) {
    for (const value of values.values()) value.wipe();
    throw new ConnectError(`the secrets service released no value for ${missing.join(', ')}`, Code.NotFound);
  }
  return values;
}

/** The plain map a RunRequest / InjectSecretsRequest carries (the same buffers, no copies). */
export function secretEnv(values: ReadonlyMap<string, SecretBytes>): { [name: string]: Uint8Array } {
  return Object.fromEntries([...values].map(([name, value]) => [name, value.reveal()]));
}
