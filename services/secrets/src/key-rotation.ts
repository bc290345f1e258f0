import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { sqlState } from '@shellwego/kit/db';
import type { Logger } from '@shellwego/kit/log';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { AuditLog } from './audit-log.js';
import type { EncryptionBudget } from './crypto/index.js';
import { describeSecretBinding, rewrapDataKey, rewrapDigestKey, SecretDecryptError } from './crypto/index.js';
import { kekUsage, recordKek } from './db-encryption-budget.js';
import type { InFlightWrites } from './in-flight-writes.js';
import type { LoadedKek } from './kek/index.js';
import { KekError } from './kek/index.js';
import { kekReferences } from './kek-references.js';
import type { KeyRingHolder } from './key-ring-holder.js';
import { ReservedEncryptions } from './reserved-encryptions.js';
import type { RotationTable, ScopeKindColumn, SecretsDatabase } from './schema.js';
import { scopeFromColumns } from './scope-columns.js';

export interface MasterKeyVersionStatus {
  readonly kekId: string;
  readonly createdAt: Date | undefined;
  /** Secret versions whose data key it wraps. */
  readonly wrappedCount: bigint;
  readonly encryptions: bigint;
}

export interface MasterKeyStatus {
  readonly currentKekId: string;
  readonly versions: readonly MasterKeyVersionStatus[];
  readonly rewrapRunning: boolean;
  readonly rewrapDone: bigint;
  readonly rewrapTotal: bigint;
}

export interface KeyRotationOptions {
  readonly db: Kysely<SecretsDatabase>;
  readonly dialect: 'postgres' | 'pglite';
  readonly keys: KeyRingHolder;
  readonly budget: EncryptionBudget;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly inFlight: InFlightWrites;
  readonly logger: Logger;
  readonly batchSize: number;
  /** How long a re-wrap's claim lasts without renewal before another replica may take over. */
  readonly leaseMs?: number;
  /** Wait before retrying a re-wrap that failed on a database error. */
  readonly retryMs?: number;
}

interface VersionKey {
  scope_kind: ScopeKindColumn;
  app: string;
  name: string;
  version: number;
}

const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_RETRY_MS = 5_000;
const DEADLOCK = '40P01';

function describeRow(row: VersionKey): string {
  return describeSecretBinding({ scope: scopeFromColumns(row), name: row.name, version: row.version });
}

/**
 * Master key rotation. RotateMasterKey creates the next key version and
 * makes it current at once; a background job then moves every data key to
 * it in batches (one transaction each), without ever decrypting a value.
 * Older versions stay loadable, so reads never stop. One rotation runs at a
 * time across replicas: the re-wrap holds a lease in the `rotation` row and
 * renews it; an interrupted re-wrap (crash, shutdown) resumes at the next
 * start, or when its lease runs out.
 */
export class KeyRotation {
  readonly #options: KeyRotationOptions;
  readonly #db: Kysely<SecretsDatabase>;
  readonly #holder = randomUUID();
  readonly #leaseMs: number;
  readonly #stop = new AbortController();
  #starting = false;
  #job: Promise<void> | undefined;
  #resumeTimer: NodeJS.Timeout | undefined;

  constructor(options: KeyRotationOptions) {
    this.#options = options;
    this.#db = options.db;
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Adds a master key version, makes it current and starts the re-wrap; returns its id. */
  async rotate(principal: string): Promise<string> {
    if (this.#starting || this.#job !== undefined) return this.#refuse(principal, await this.#loadRotation());
    this.#starting = true;
    try {
      if (!(await this.#claim({ fresh: principal }))) return await this.#refuse(principal, await this.#loadRotation());
      let kek: LoadedKek;
      try {
        kek = await this.#options.keys.source.create();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await this.#finish(`no new master key: ${message}`);
        if (err instanceof KekError) {
          throw new ConnectError(`cannot create a new master key: ${message}`, err.code === 'exists' ? Code.FailedPrecondition : Code.Internal);
        }
        throw err;
      }
      // From here the new key is in use; the re-wrap starts whatever happens to the bookkeeping below.
      this.#options.keys.add(kek);
      this.#startJob(kek);
      this.#options.logger.info({ kekId: kek.id, by: principal }, 'master key rotated; re-wrapping data keys');
      await recordKek(this.#db, kek.id);
      await this.#db.updateTable('rotation').set({ target_kek_id: kek.id }).where('id', '=', 1).where('holder', '=', this.#holder).execute();
      await this.#options.audit.append({ principal, action: 'rotate', outcome: 'granted', reason: `new master key ${kek.id}` });
      return kek.id;
    } finally {
      this.#starting = false;
    }
  }

  /**
   * Resumes a re-wrap that was interrupted, at start-up. While another
   * replica's lease is live it checks again when the lease would run out.
   */
  async resumeInterrupted(): Promise<void> {
    const row = await this.#loadRotation();
    if (row.finished_at !== null || this.#job !== undefined || this.#stop.signal.aborted) return;
    // One process per PGlite directory: any claim in it is from a process that is gone.
    if (!(await this.#claim({ takeOver: this.#options.dialect === 'pglite' }))) {
      const waitMs = row.lease_until === null ? this.#leaseMs : Math.max(row.lease_until.getTime() - Date.now(), 0) + 1000;
      this.#resumeTimer = setTimeout(() => {
        this.resumeInterrupted().catch((err: unknown) => this.#options.logger.error({ err }, 'cannot resume the master key re-wrap'));
      }, waitMs);
      this.#resumeTimer.unref();
      return;
    }
    const target = this.#options.keys.current();
    await this.#db.updateTable('rotation').set({ target_kek_id: target.id }).where('id', '=', 1).where('holder', '=', this.#holder).execute();
    this.#options.logger.info({ kekId: target.id }, 'resuming an interrupted master key re-wrap');
    this.#startJob(target);
  }

  async status(): Promise<MasterKeyStatus> {
    // Another replica may have rotated since: report (and from now on write with) its key too.
    await this.#options.keys.reload();
    const [references, usage, rotation] = await Promise.all([
      kekReferences(this.#db),
      kekUsage(this.#db),
      sql<RotationTable & { lease_live: boolean }>`SELECT *, coalesce(lease_until > now(), false) AS lease_live FROM rotation WHERE id = 1`.execute(this.#db),
    ]);
    const ring = this.#options.keys.ring;
    const current = ring.current().id;
    const ids = [...ring.ids, ...[...references.secretVersions.keys()].filter((id) => !ring.has(id))];
    const versions = ids
      .filter((id) => id === current || references.secretVersions.has(id) || references.digestKey === id)
      .map((kekId) => ({
        kekId,
        createdAt: usage.get(kekId)?.createdAt ?? ring.get(kekId)?.createdAt,
        wrappedCount: references.secretVersions.get(kekId) ?? 0n,
        encryptions: usage.get(kekId)?.encryptions ?? 0n,
      }));
    const row = rotation.rows[0];
    return {
      currentKekId: current,
      versions,
      rewrapRunning: this.#job !== undefined || (row !== undefined && row.finished_at === null && row.lease_live),
      rewrapDone: row?.done ?? 0n,
      rewrapTotal: row?.total ?? 0n,
    };
  }

  /** Stops the re-wrap between batches; the next start resumes it. */
  async close(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#resumeTimer);
    await this.#job;
  }

  /** Resolves when the running re-wrap (if any) has ended: for tests and the CLI's --wait. */
  async idle(): Promise<void> {
    await this.#job;
  }

  async #refuse(principal: string, row: RotationTable): Promise<never> {
    const since = row.started_at === null ? '' : ` started at ${row.started_at.toISOString()}${row.started_by === '' ? '' : ` by ${row.started_by}`}`;
    const reason = `a master key rotation${since} is still re-wrapping data keys (${row.done} of ${row.total} done)`;
    await this.#options.audit.append({ principal, action: 'rotate', outcome: 'denied', reason: `rotation-running: ${reason}` });
    throw new ConnectError(`${reason}; wait for it to finish (shellwego secret rotate-key --status) before rotating again`, Code.FailedPrecondition);
  }

  async #loadRotation(): Promise<RotationTable> {
    return this.#db.selectFrom('rotation').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
  }

  /**
   * Takes the rotation lease: `fresh` starts a new rotation when none is
   * running; otherwise an unfinished one is taken over when its lease ran
   * out (or unconditionally with `takeOver`). Returns false when refused.
   */
  async #claim(mode: { fresh: string } | { takeOver: boolean }): Promise<boolean> {
    let update = this.#db.updateTable('rotation').set({ holder: this.#holder, lease_until: this.#leaseExpiry() }).where('id', '=', 1);
    if ('fresh' in mode) {
      update = update
        .set({ started_at: sql<Date>`now()`, started_by: mode.fresh, finished_at: null, target_kek_id: null, done: 0n, total: 0n, error: '' })
        .where((eb) => eb.or([eb('finished_at', 'is not', null), eb('lease_until', 'is', null), eb('lease_until', '<', sql<Date>`now()`)]));
    } else {
      update = update.where('finished_at', 'is', null);
      if (!mode.takeOver) update = update.where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', sql<Date>`now()`)]));
    }
    const result = await update.executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  /** When a lease taken or renewed now runs out, in database time (replicas' clocks may differ). */
  #leaseExpiry() {
    return sql<Date>`now() + ${`${this.#leaseMs} milliseconds`}::interval`;
  }

  async #finish(error: string): Promise<void> {
    await this.#db
      .updateTable('rotation')
      .set({ finished_at: sql<Date>`now()`, holder: null, lease_until: null, error })
      .where('id', '=', 1)
      .where('holder', '=', this.#holder)
      .execute();
  }

  /** Gives the lease up without finishing, so whoever starts next resumes at once. */
  async #release(): Promise<void> {
    await this.#db.updateTable('rotation').set({ holder: null, lease_until: null }).where('id', '=', 1).where('holder', '=', this.#holder).execute();
  }

  #startJob(target: LoadedKek): void {
    const { logger, retryMs = DEFAULT_RETRY_MS } = this.#options;
    const signal = this.#stop.signal;
    const renew = setInterval(() => {
      this.#db
        .updateTable('rotation')
        .set({ lease_until: this.#leaseExpiry() })
        .where('id', '=', 1)
        .where('holder', '=', this.#holder)
        .execute()
        .catch((err: unknown) => logger.warn({ err }, 'cannot renew the master key rotation lease'));
    }, this.#leaseMs / 3);
    renew.unref();
    this.#job = (async () => {
      try {
        for (;;) {
          try {
            const failures = await this.#rewrap(target, signal);
            if (signal.aborted) {
              await this.#release();
              return;
            }
            const error =
              failures.length === 0
                ? ''
                : `${failures.length} secret version(s) could not be re-wrapped and stay under their old master key: ${failures.join('; ')}`;
            await this.#finish(error);
            if (error === '') logger.info({ kekId: target.id }, 'master key re-wrap finished');
            else logger.error({ kekId: target.id, failures }, 'master key re-wrap finished with failures');
            return;
          } catch (err) {
            logger.error({ err }, 'master key re-wrap failed; retrying');
            if (await aborted(signal, retryMs)) {
              await this.#release().catch(() => undefined);
              return;
            }
          }
        }
      } finally {
        clearInterval(renew);
        this.#job = undefined;
      }
    })();
  }

  /**
   * Moves every data key not under `target` to it. Passes repeat until one
   * moves nothing, catching versions written under the old key by writes
   * that were in flight at rotation. Returns the versions that could not be
   * moved (damaged, or under a key this process cannot load).
   */
  async #rewrap(target: LoadedKek, signal: AbortSignal): Promise<string[]> {
    const { keys, budget, inFlight, batchSize } = this.#options;
    await inFlight.settledExcept(target.id);
    const failures = new Map<string, string>();
    let done = 0n;
    try {
      if (await this.#rewrapDigestKey(target)) done = 1n;
    } catch (err) {
      if (!(err instanceof SecretDecryptError)) throw err;
      failures.set('digest key', `the digest key (${err.reason})`);
    }
    for (;;) {
      const remaining = await this.#db
        .selectFrom('secret_versions')
        .select((eb) => eb.fn.countAll<bigint>().as('count'))
        .where('kek_id', '<>', target.id)
        .executeTakeFirstOrThrow();
      await this.#progress(done, done + remaining.count);
      let moved = 0;
      let after: VersionKey | undefined;
      for (;;) {
        if (signal.aborted) return [...failures.values()];
        let query = this.#db.selectFrom('secret_versions').select(['scope_kind', 'app', 'name', 'version', 'blob', 'kek_id']).where('kek_id', '<>', target.id);
        if (after !== undefined) {
          const a = after;
          query = query.where(sql<boolean>`(scope_kind, app, name, version) > (${a.scope_kind}, ${a.app}, ${a.name}, ${a.version})`);
        }
        const batch = await query.orderBy('scope_kind').orderBy('app').orderBy('name').orderBy('version').limit(batchSize).execute();
        if (batch.length === 0) break;
        after = batch.at(-1);
        const reserved = await ReservedEncryptions.take(budget, target.id, batch.length);
        const rewrapped: Array<VersionKey & { blob: Buffer; from: string }> = [];
        for (const row of batch) {
          const binding = { scope: scopeFromColumns(row), name: row.name, version: row.version };
          try {
            const blob = await keys.withRing((ring) => rewrapDataKey(row.blob, binding, ring, target, reserved));
            rewrapped.push({ scope_kind: row.scope_kind, app: row.app, name: row.name, version: row.version, blob, from: row.kek_id });
          } catch (err) {
            if (!(err instanceof SecretDecryptError)) throw err;
            failures.set(describeRow(row), `${describeRow(row)} (${err.reason})`);
          }
        }
        const count = await this.#store(rewrapped, target.id);
        moved += count;
        done += BigInt(count);
        await this.#progress(done);
        // PGlite answers within the same promise chain; without a turn of the event
        // loop here the whole re-wrap would run before any request is served.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (moved === 0) return [...failures.values()];
    }
  }

  /** Writes one batch in one transaction; a version changed meanwhile (deleted) is skipped. */
  async #store(rows: ReadonlyArray<VersionKey & { blob: Buffer; from: string }>, targetId: string): Promise<number> {
    if (rows.length === 0) return 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#db.transaction().execute(async (trx) => {
          let count = 0;
          for (const row of rows) {
            const result = await trx
              .updateTable('secret_versions')
              .set({ blob: row.blob, kek_id: targetId })
              .where('scope_kind', '=', row.scope_kind)
              .where('app', '=', row.app)
              .where('name', '=', row.name)
              .where('version', '=', row.version)
              .where('kek_id', '=', row.from)
              .executeTakeFirst();
            count += Number(result.numUpdatedRows);
          }
          return count;
        });
      } catch (err) {
        // A concurrent retention delete can deadlock with a batch; Postgres aborts one of them.
        if (sqlState(err) !== DEADLOCK || attempt >= 3) throw err;
      }
    }
  }

  async #rewrapDigestKey(target: LoadedKek): Promise<boolean> {
    const row = await this.#db.selectFrom('digest_key').select(['blob', 'kek_id']).where('id', '=', 1).executeTakeFirst();
    if (row === undefined || row.kek_id === target.id) return false;
    const reserved = await ReservedEncryptions.take(this.#options.budget, target.id, 1);
    const blob = await this.#options.keys.withRing((ring) => rewrapDigestKey(row.blob, ring, target, reserved));
    const result = await this.#db
      .updateTable('digest_key')
      .set({ blob, kek_id: target.id })
      .where('id', '=', 1)
      .where('kek_id', '=', row.kek_id)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async #progress(done: bigint, total?: bigint): Promise<void> {
    await this.#db
      .updateTable('rotation')
      .set(total === undefined ? { done, lease_until: this.#leaseExpiry() } : { done, total, lease_until: this.#leaseExpiry() })
      .where('id', '=', 1)
      .where('holder', '=', this.#holder)
      .execute();
  }
}

/** Waits `ms`; true when `signal` aborted first (or already had). */
function aborted(signal: AbortSignal, ms: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
