import { create } from '@bufbuild/protobuf';
import type { SecretScope } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { SecretScopeKind, SecretScopeSchema } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { invalidArgument } from '@shellwego/kit/errors';
import { validateAppName } from './app-name.js';
import { quoteInput } from './quote-input.js';

/** A validated scope, as the rest of the service uses it. */
export type SecretScopeRef = { readonly kind: 'workspace' } | { readonly kind: 'app'; readonly app: string };

/** Validates a required SecretScope; throws INVALID_ARGUMENT naming the field. */
export function validateSecretScope(scope: SecretScope | undefined, field = 'scope'): SecretScopeRef {
  if (scope === undefined) {
    throw invalidArgument(`${field}: a scope is required; set kind to SECRET_SCOPE_KIND_WORKSPACE, or SECRET_SCOPE_KIND_APP with app`);
  }
  switch (scope.kind) {
    case SecretScopeKind.WORKSPACE:
      if (scope.app !== '') {
        throw invalidArgument(
          `${field}.app: must be empty for the workspace scope (got ${quoteInput(scope.app)}); use SECRET_SCOPE_KIND_APP for an app secret`,
        );
      }
      return { kind: 'workspace' };
    case SecretScopeKind.APP:
      return { kind: 'app', app: validateAppName(scope.app, `${field}.app`) };
    case SecretScopeKind.UNSPECIFIED:
      throw invalidArgument(`${field}.kind: is unspecified; use SECRET_SCOPE_KIND_WORKSPACE or SECRET_SCOPE_KIND_APP`);
    default:
      throw invalidArgument(`${field}.kind: ${String(scope.kind)} is not a known scope kind; use SECRET_SCOPE_KIND_WORKSPACE or SECRET_SCOPE_KIND_APP`);
  }
}

/** Like validateSecretScope, but an absent scope means "no filter" (ListSecrets). */
export function validateOptionalSecretScope(scope: SecretScope | undefined, field = 'scope'): SecretScopeRef | undefined {
  return scope === undefined ? undefined : validateSecretScope(scope, field);
}

/** The contract form of a validated scope, for responses and audit events. */
export function secretScopeToProto(scope: SecretScopeRef): SecretScope {
  return scope.kind === 'app'
    ? create(SecretScopeSchema, { kind: SecretScopeKind.APP, app: scope.app })
    : create(SecretScopeSchema, { kind: SecretScopeKind.WORKSPACE });
}

/** "workspace" or "app shop", for messages. */
export function describeSecretScope(scope: SecretScopeRef): string {
  return scope.kind === 'app' ? `app ${scope.app}` : 'workspace';
}
