import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Grant } from '@shellwego/contracts/common/v1/grant_pb';
import type { ResolveSecretsResponse } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { ResolveSecretsResponseSchema } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { GrantVerifier, VerifiedGrant } from '@shellwego/kit/grant';
import { GrantError, verifyGrant } from '@shellwego/kit/grant';
import type { Logger } from '@shellwego/kit/log';
import type { Principal } from '@shellwego/kit/pki';
import { spiffeId } from '@shellwego/kit/pki';
import type { SecretBytes } from '@shellwego/kit/secret-bytes';
import { wipeAll } from '@shellwego/kit/secret-bytes';
import type { AuditEntry, AuditLog } from './audit-log.js';
import { describeSecretBinding, openSecret, SecretDecryptError } from './crypto/index.js';
import type { KeyRingHolder } from './key-ring-holder.js';
import type { SecretStore, StoredVersion } from './secret-store.js';
import type { SecretScopeRef } from './validation/index.js';
import { appNameProblem, describeSecretScope, secretNameProblem, secretScopeToProto } from './validation/index.js';

/** One value released to a node. */
export interface ReleasedSecret {
  readonly name: string;
  readonly version: number;
  /** Where it came from: the app scope, or the workspace by fallback. */
  readonly scope: SecretScopeRef;
  readonly value: SecretBytes;
}

/** The values of one resolve; whoever holds it wipes it once they are delivered. */
export interface SecretRelease {
  readonly instanceId: string;
  readonly secrets: readonly ReleasedSecret[];
  wipe(): void;
}

export interface SecretResolverOptions {
  readonly store: Pick<SecretStore, 'latestFor'>;
  readonly keys: KeyRingHolder;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly verifier: GrantVerifier;
  readonly logger: Logger;
  /** The clock grants are checked against. */
  readonly now?: () => Date;
}

/** Signed claims that fail validation: the scheduler made them, so the message points there. */
function badClaims(problems: readonly string[]): ConnectError {
  return new ConnectError(`the grant's claims are unusable: ${problems.join('; ')}; the scheduler issued a bad grant`, Code.InvalidArgument);
}

/**
 * ResolveSecrets: checks the grant against the calling node, finds each
 * named secret (app scope, else workspace), decrypts them all or none, and
 * audits the outcome, granted or denied, before anything is released.
 */
export class SecretResolver {
  readonly #options: SecretResolverOptions;

  constructor(options: SecretResolverOptions) {
    this.#options = options;
  }

  async resolve(caller: Principal, grant: Grant | undefined): Promise<SecretRelease> {
    const principal = spiffeId(caller);
    if (caller.kind !== 'node') {
      await this.#deny({ principal, reason: 'not-a-node: only node certificates may resolve secrets' });
      throw new ConnectError(`${principal} may not resolve secrets; only the node an instance is placed on may`, Code.PermissionDenied);
    }
    const verified = await this.#verify(principal, caller.id, grant);
    const scope: SecretScopeRef = { kind: 'app', app: verified.app };
    const names = [...new Set(verified.secretNames)];
    const audited = { principal, instanceId: verified.instanceId, scope };
    const problems = [appNameProblem(verified.app), ...names.map(secretNameProblem)].filter((p) => p !== undefined);
    if (problems.length > 0) {
      await this.#deny({ ...audited, scope: undefined, secrets: names.map((name) => ({ name, version: 0 })), reason: `invalid-grant: ${problems.join('; ')}` });
      throw badClaims(problems);
    }

    const found = await this.#options.store.latestFor(verified.app, names);
    const missing = names.filter((name) => !found.has(name));
    if (missing.length > 0) {
      const secrets = names.map((name) => ({ name, version: found.get(name)?.version ?? 0 }));
      await this.#deny({ ...audited, secrets, reason: `not-found: ${missing.join(', ')}` });
      throw new ConnectError(
        `no secret named ${missing.join(', ')} exists in ${describeSecretScope(scope)} or the workspace; set ${missing.length === 1 ? 'it' : 'them'} with \`shellwego secret set NAME --app ${verified.app}\``,
        Code.NotFound,
      );
    }

    const released = await this.#open(
      names.map((name) => found.get(name) as StoredVersion),
      audited,
    );
    const release: SecretRelease = { instanceId: verified.instanceId, secrets: released, wipe: () => wipeAll(released.map((s) => s.value)) };
    try {
      await this.#options.audit.append({
        ...audited,
        action: 'resolve',
        outcome: 'granted',
        secrets: released.map(({ name, version }) => ({ name, version })),
      });
    } catch (err) {
      release.wipe();
      this.#options.logger.error({ err, instanceId: verified.instanceId }, 'cannot record a resolve in the audit log; values withheld');
      throw new ConnectError('the release could not be audited, so no value was released; retry once the secrets database is reachable', Code.Unavailable);
    }
    return release;
  }

  async #verify(principal: string, nodeId: string, grant: Grant | undefined): Promise<VerifiedGrant> {
    try {
      return verifyGrant(grant, this.#options.verifier, { audience: 'secrets', nodeId, now: this.#options.now?.() ?? new Date() });
    } catch (err) {
      if (!(err instanceof GrantError)) throw err;
      // Claims are only trusted (and recorded) when the signature held.
      const claims = err.grant;
      const app = claims !== undefined && appNameProblem(claims.app) === undefined ? claims.app : undefined;
      await this.#deny({
        principal,
        instanceId: claims?.instanceId,
        scope: app === undefined ? undefined : { kind: 'app', app },
        secrets: claims?.secretNames.map((name) => ({ name, version: 0 })),
        reason: `${err.reason}: ${err.message}`,
      });
      throw new ConnectError(`grant refused: ${err.message}`, err.reason === 'missing' ? Code.InvalidArgument : Code.PermissionDenied);
    }
  }

  /** Decrypts every version or none: on any failure the values opened so far are wiped. */
  async #open(versions: readonly StoredVersion[], audited: Pick<AuditEntry, 'principal' | 'instanceId' | 'scope'>): Promise<ReleasedSecret[]> {
    const released: ReleasedSecret[] = [];
    for (const stored of versions) {
      const binding = { scope: stored.scope, name: stored.name, version: stored.version };
      try {
        const value = await this.#options.keys.withRing((ring) => openSecret(stored.blob, binding, ring));
        released.push({ name: stored.name, version: stored.version, scope: stored.scope, value });
      } catch (err) {
        wipeAll(released.map((s) => s.value));
        if (!(err instanceof SecretDecryptError)) throw err;
        const label = describeSecretBinding(binding);
        this.#options.logger.error({ secret: label, reason: err.reason, err: err.message }, 'a stored secret cannot be decrypted');
        await this.#deny({
          ...audited,
          secrets: versions.map(({ name, version }) => ({ name, version })),
          reason: `undecryptable: ${label} (${err.reason})`,
        });
        throw new ConnectError(`${label} cannot be decrypted, so nothing was released: ${err.message}`, Code.DataLoss);
      }
    }
    return released;
  }

  /** Records a refusal; the refusal stands even when the audit log is unreachable. */
  async #deny(entry: Omit<AuditEntry, 'action' | 'outcome'>): Promise<void> {
    try {
      await this.#options.audit.append({ ...entry, action: 'resolve', outcome: 'denied' });
    } catch (err) {
      this.#options.logger.error({ err, reason: entry.reason }, 'cannot record a refused resolve in the audit log');
    }
  }
}

/**
 * The response for `release`, whose values are wiped once connect has
 * serialized and written it. The message references the live buffers (no
 * copy). Connect aborts the handler context's signal when the response
 * pipeline ends (after the last byte is handed to the transport), or
 * earlier on cancellation, deadline or shutdown. Serialization runs
 * synchronously in the promise chain that follows the handler's return,
 * before any I/O callback can fire, so no abort can land between the
 * check below and serialization: the wipe can never zero a value before
 * it is encoded.
 */
export function respondThenWipe(release: SecretRelease, signal: AbortSignal): ResolveSecretsResponse {
  if (signal.aborted) {
    release.wipe();
    throw new ConnectError('the call ended before the values were sent; nothing was released', Code.Canceled);
  }
  signal.addEventListener('abort', () => release.wipe(), { once: true });
  return create(ResolveSecretsResponseSchema, {
    secrets: release.secrets.map((secret) => ({
      name: secret.name,
      value: secret.value.reveal(),
      version: secret.version,
      scope: secretScopeToProto(secret.scope),
    })),
  });
}
