import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import type { RefusedCall } from '@shellwego/kit/auth';
import { openDatabase } from '@shellwego/kit/db';
import type { GrantVerifier } from '@shellwego/kit/grant';
import type { Logger } from '@shellwego/kit/log';
import { createMetricsRegistry, type MetricsRegistry } from '@shellwego/kit/metrics';
import { spiffeId } from '@shellwego/kit/pki';
import type { ServiceRegistration } from '@shellwego/kit/rpc';
import { implement } from '@shellwego/kit/rpc';
import type { Kysely } from 'kysely';
import { AuditLog } from './audit-log.js';
import type { DigestKey } from './crypto/index.js';
import { ChunkedEncryptionBudget, DEFAULT_KEK_ENCRYPTION_LIMIT } from './crypto/index.js';
import { DbEncryptionBudget, recordKek } from './db-encryption-budget.js';
import { bindLegacyDigests, loadOrCreateDigestKey } from './digest-key-store.js';
import { InFlightWrites } from './in-flight-writes.js';
import type { KekSource } from './kek/index.js';
import { loadOrCreateKekRing } from './kek/index.js';
import { kekReferences, referencedKekIds } from './kek-references.js';
import { KeyRingHolder } from './key-ring-holder.js';
import { KeyRotation } from './key-rotation.js';
import { migrations } from './migrations.js';
import { SecretResolver } from './resolve-secrets.js';
import type { SecretsDatabase } from './schema.js';
import { SecretStore } from './secret-store.js';
import { createSecretsMetrics } from './secrets-metrics.js';
import { secretsServiceImpl } from './secrets-service.js';

export interface SecretsDomainOptions {
  /** postgres:// URL, PGlite directory, or memory://. */
  readonly database: string;
  /** Where master keys come from; normally a FileKekSource on the configured master key file. */
  readonly kekSource: KekSource;
  readonly verifier: GrantVerifier;
  readonly keepVersions: number;
  readonly rewrapBatchSize: number;
  readonly logger: Logger;
  /** The process's Prometheus registry; a private one when left out (tests). */
  readonly metrics?: MetricsRegistry;
  /** Cap on encryptions per master key; the default is the NIST-derived bound. */
  readonly encryptionLimit?: number;
  /** The clock grants are checked against. */
  readonly now?: () => Date;
}

/** Everything the secrets service is made of, wired and started. */
export interface SecretsDomain {
  readonly service: ServiceRegistration;
  readonly db: Kysely<SecretsDatabase>;
  readonly dialect: 'postgres' | 'pglite';
  readonly keys: KeyRingHolder;
  readonly store: SecretStore;
  readonly resolver: SecretResolver;
  readonly rotation: KeyRotation;
  readonly audit: AuditLog;
  /** Audits a ResolveSecrets call refused to a user or service certificate (callers without one are counted and logged in aggregate by the kit). */
  onRefused(call: RefusedCall): Promise<void>;
  /** Stops the re-wrap job, wipes the digest key and closes the database. */
  close(): Promise<void>;
}

/**
 * Opens the database, loads the master keys (refusing to start when the
 * database references a key that cannot be loaded; creating the first key
 * only when nothing references any), opens the digest key and resumes an
 * interrupted re-wrap.
 */
export async function openSecretsDomain(options: SecretsDomainOptions): Promise<SecretsDomain> {
  const { logger } = options;
  const metrics = options.metrics ?? createMetricsRegistry();
  const database = await openDatabase<SecretsDatabase>({ url: options.database, schema: 'secrets', migrations, logger, metrics });
  const { db, dialect } = database;
  let digestKey: DigestKey | undefined;
  try {
    const references = referencedKekIds(await kekReferences(db));
    const ring = await loadOrCreateKekRing(references, options.kekSource);
    const keys = new KeyRingHolder(options.kekSource, ring);
    for (const id of ring.ids) await recordKek(db, id);
    const budget = new ChunkedEncryptionBudget(new DbEncryptionBudget(db, options.encryptionLimit));
    digestKey = await loadOrCreateDigestKey(db, keys, budget);
    const rebound = await bindLegacyDigests(db, keys, digestKey);
    if (rebound > 0) logger.info({ versions: rebound }, 'value digests now key in scope and name');
    // The rotation, made below, reads the audit log that counts into the metrics.
    let rotationStatus: KeyRotation | undefined;
    const secretsMetrics = createSecretsMetrics(metrics, () => rotationStatus, options.encryptionLimit ?? DEFAULT_KEK_ENCRYPTION_LIMIT);
    const audit = new AuditLog(db, (entry) => secretsMetrics.audited(entry));
    const inFlight = new InFlightWrites();
    const store = new SecretStore({ db, keys, budget, digestKey, audit, inFlight, keepVersions: options.keepVersions });
    const resolver = new SecretResolver({ store, keys, audit, verifier: options.verifier, logger, ...(options.now ? { now: options.now } : {}) });
    const rotation = new KeyRotation({ db, dialect, keys, budget, audit, inFlight, logger, batchSize: options.rewrapBatchSize });
    rotationStatus = rotation;
    await rotation.resumeInterrupted();
    logger.info({ masterKeys: ring.ids, current: ring.current().id, source: options.kekSource.description }, 'master keys loaded');
    const heldDigestKey = digestKey;
    return {
      service: implement(SecretsService, secretsServiceImpl({ store, resolver, rotation, audit })),
      db,
      dialect,
      keys,
      store,
      resolver,
      rotation,
      audit,
      async onRefused(call) {
        if (call.service !== SecretsService.typeName || call.method !== SecretsService.method.resolveSecrets.name) return;
        const principal = spiffeId(call.caller);
        try {
          await audit.append({ principal, action: 'resolve', outcome: 'denied', reason: `not-a-node: ${call.reason}` });
        } catch (err) {
          logger.error({ err, principal }, 'cannot record a refused resolve in the audit log');
        }
      },
      async close() {
        await rotation.close();
        heldDigestKey.wipe();
        await database.close();
      },
    };
  } catch (err) {
    digestKey?.wipe();
    await database.close().catch(() => undefined);
    throw err;
  }
}
