import type { ServiceImpl } from '@connectrpc/connect';
import type { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { principalOf } from '@shellwego/kit/auth';
import { invalidArgument } from '@shellwego/kit/errors';
import { spiffeId } from '@shellwego/kit/pki';
import type { AuditLog } from './audit-log.js';
import type { KeyRotation } from './key-rotation.js';
import { auditActionFilter, auditEventToProto, auditOutcomeFilter, masterKeyStatusToProto, secretInfoToProto, secretVersionToProto } from './proto-mapping.js';
import type { SecretResolver } from './resolve-secrets.js';
import { respondThenWipe } from './resolve-secrets.js';
import { toConnectError } from './rpc-errors.js';
import type { SecretStore } from './secret-store.js';
import { quoteInput, validateOptionalSecretScope, validateSecretName, validateSecretScope, validateSecretValue } from './validation/index.js';

export interface SecretsServiceParts {
  readonly store: SecretStore;
  readonly resolver: SecretResolver;
  readonly rotation: KeyRotation;
  readonly audit: AuditLog;
}

// Free-text audit filters are matched exactly; anything longer matches nothing anyway.
const MAX_FILTER_CHARS = 256;

function filterText(value: string, field: string): string | undefined {
  if (value.length > MAX_FILTER_CHARS) throw invalidArgument(`${field}: ${quoteInput(value)} is longer than ${MAX_FILTER_CHARS} characters`);
  return value === '' ? undefined : value;
}

/** Runs a handler body, turning domain errors into the codes the contract promises. */
async function guarded<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw toConnectError(err);
  }
}

/**
 * The SecretsService handlers: input validation, then the domain. Callers
 * were authorized from the contract's access option before these run.
 */
export function secretsServiceImpl(parts: SecretsServiceParts): ServiceImpl<typeof SecretsService> {
  const { store, resolver, rotation, audit } = parts;
  return {
    async setSecret(request, context) {
      try {
        const principal = spiffeId(principalOf(context));
        const scope = validateSecretScope(request.scope);
        const name = validateSecretName(request.name);
        validateSecretValue(request.value);
        const info = await guarded(() => store.set({ scope, name, value: request.value, principal }));
        return { secret: secretInfoToProto(info) };
      } finally {
        // The request's copy of the value, decoded from the wire: nothing needs it any more.
        request.value.fill(0);
      }
    },

    async listSecrets(request) {
      const scope = validateOptionalSecretScope(request.scope);
      const secrets = await guarded(() => store.list(scope));
      return { secrets: secrets.map(secretInfoToProto) };
    },

    async listWorkspaceSecretNames() {
      return { names: await guarded(() => store.names({ kind: 'workspace' })) };
    },

    async listSecretVersions(request) {
      const scope = validateSecretScope(request.scope);
      const name = validateSecretName(request.name);
      const versions = await guarded(() => store.versions(scope, name));
      return { versions: versions.map(secretVersionToProto) };
    },

    async deleteSecret(request, context) {
      const principal = spiffeId(principalOf(context));
      const scope = validateSecretScope(request.scope);
      const name = validateSecretName(request.name);
      const versionsDeleted = await guarded(() => store.delete(scope, name, principal));
      return { versionsDeleted };
    },

    async resolveSecrets(request, context) {
      const caller = principalOf(context);
      const release = await guarded(() => resolver.resolve(caller, request.grant));
      return respondThenWipe(release, context.signal);
    },

    async rotateMasterKey(_request, context) {
      const principal = spiffeId(principalOf(context));
      const kekId = await guarded(() => rotation.rotate(principal));
      return { kekId };
    },

    async getMasterKeyStatus() {
      return masterKeyStatusToProto(await guarded(() => rotation.status()));
    },

    async listAuditEvents(request) {
      const name = filterText(request.name, 'name');
      if (name !== undefined) validateSecretName(name);
      const page = await guarded(() =>
        audit.list({
          afterId: request.afterId,
          action: auditActionFilter(request.action),
          outcome: auditOutcomeFilter(request.outcome),
          name,
          instanceId: filterText(request.instanceId, 'instance_id'),
          principal: filterText(request.principal, 'principal'),
          pageSize: request.page?.pageSize ?? 0,
          pageToken: request.page?.pageToken ?? '',
        }),
      );
      return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
    },
  };
}
