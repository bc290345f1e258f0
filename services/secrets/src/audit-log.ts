import { asSqlBigint } from '@shellwego/kit/db';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { decodePageToken, encodePageToken } from './page-token.js';
import type { AuditActionColumn, AuditedSecretJson, AuditOutcomeColumn, SecretsDatabase } from './schema.js';
import type { SecretScopeRef } from './validation/index.js';

export type AuditAction = AuditActionColumn;
export type AuditOutcome = AuditOutcomeColumn;

/** What happened, by whom. Holds names and versions only, never a value. */
export interface AuditEntry {
  /** The caller's SPIFFE id. */
  readonly principal: string;
  readonly action: AuditAction;
  readonly scope?: SecretScopeRef;
  readonly secrets?: readonly AuditedSecretJson[];
  readonly instanceId?: string;
  readonly outcome: AuditOutcome;
  /** Why it was denied (a stable code, a colon, then the explanation). */
  readonly reason?: string;
}

export interface AuditRecord {
  readonly id: bigint;
  readonly time: Date;
  readonly principal: string;
  readonly action: AuditAction;
  readonly scope: SecretScopeRef | undefined;
  readonly secrets: readonly AuditedSecretJson[];
  readonly instanceId: string;
  readonly outcome: AuditOutcome;
  readonly reason: string;
}

export interface AuditQuery {
  /** Only events after this id (following a log). */
  readonly afterId?: bigint;
  readonly action?: AuditAction;
  readonly outcome?: AuditOutcome;
  /** Only events naming this secret. */
  readonly name?: string;
  readonly instanceId?: string;
  readonly principal?: string;
  readonly pageSize?: number;
  readonly pageToken?: string;
}

export interface AuditPage {
  readonly events: AuditRecord[];
  /** Empty at the end. */
  readonly nextPageToken: string;
}

export const DEFAULT_AUDIT_PAGE_SIZE = 100;
export const MAX_AUDIT_PAGE_SIZE = 1000;
// Bounds what one event stores, whatever a caller or a grant carries.
const MAX_REASON_CHARS = 2000;
const MAX_AUDITED_SECRETS = 1000;

/** Where an audit entry is written: the database, or the transaction of the change it records. */
export type AuditExecutor = Kysely<SecretsDatabase>;

// Entries written by one INSERT at most; more wait for the next round.
const MAX_BATCH = 500;

interface Pending {
  readonly entry: AuditEntry;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

function toRow(entry: AuditEntry) {
  return {
    principal: entry.principal,
    action: entry.action,
    scope_kind: entry.scope?.kind ?? null,
    app: entry.scope === undefined ? null : entry.scope.kind === 'app' ? entry.scope.app : '',
    secrets: JSON.stringify((entry.secrets ?? []).slice(0, MAX_AUDITED_SECRETS).map(({ name, version }) => ({ name, version }))),
    instance_id: entry.instanceId ?? '',
    outcome: entry.outcome,
    reason: (entry.reason ?? '').slice(0, MAX_REASON_CHARS),
  };
}

/**
 * The append-only audit trail. Entries written outside a transaction are
 * group-committed: while one INSERT is in flight, entries arriving
 * meanwhile queue and go in the next one. Every append still resolves only
 * once its own row is committed, so a caller that waits for it (a resolve,
 * before releasing values) never acts on an unrecorded event.
 */
export class AuditLog {
  readonly #db: Kysely<SecretsDatabase>;
  #pending: Pending[] = [];
  #flushing = false;

  readonly #onWritten: (entry: AuditEntry) => void;

  /** `onWritten` hears of each entry once its row is written (inside the change's transaction when one is passed). */
  constructor(db: Kysely<SecretsDatabase>, onWritten: (entry: AuditEntry) => void = () => {}) {
    this.#db = db;
    this.#onWritten = onWritten;
  }

  /**
   * Appends one event. Pass the transaction of the change being audited so
   * the change and its audit entry commit or fail together.
   */
  async append(entry: AuditEntry, executor?: AuditExecutor): Promise<void> {
    if (executor !== undefined) {
      await executor.insertInto('audit_events').values(toRow(entry)).execute();
      this.#onWritten(entry);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.#pending.push({ entry, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, MAX_BATCH);
        try {
          await this.#db
            .insertInto('audit_events')
            .values(batch.map((p) => toRow(p.entry)))
            .execute();
          for (const p of batch) {
            this.#onWritten(p.entry);
            p.resolve();
          }
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Events oldest first, filtered, one page at a time. */
  async list(query: AuditQuery): Promise<AuditPage> {
    const filters: Record<string, string> = {
      afterId: String(query.afterId ?? 0n),
      action: query.action ?? '',
      outcome: query.outcome ?? '',
      name: query.name ?? '',
      instanceId: query.instanceId ?? '',
      principal: query.principal ?? '',
    };
    const continueAfter = decodePageToken(query.pageToken ?? '', filters);
    const afterId = continueAfter !== undefined && continueAfter > (query.afterId ?? 0n) ? continueAfter : (query.afterId ?? 0n);
    const requested = query.pageSize ?? 0;
    const pageSize = requested === 0 ? DEFAULT_AUDIT_PAGE_SIZE : Math.min(requested, MAX_AUDIT_PAGE_SIZE);

    let select = this.#db.selectFrom('audit_events').selectAll().where('id', '>', asSqlBigint(afterId));
    if (query.action !== undefined) select = select.where('action', '=', query.action);
    if (query.outcome !== undefined) select = select.where('outcome', '=', query.outcome);
    if (query.instanceId !== undefined && query.instanceId !== '') select = select.where('instance_id', '=', query.instanceId);
    if (query.principal !== undefined && query.principal !== '') select = select.where('principal', '=', query.principal);
    if (query.name !== undefined && query.name !== '') {
      select = select.where(sql<boolean>`secrets @> ${JSON.stringify([{ name: query.name }])}::jsonb`);
    }
    const rows = await select
      .orderBy('id')
      .limit(pageSize + 1)
      .execute();
    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      events: page.map((row) => ({
        id: row.id,
        time: row.time,
        principal: row.principal,
        action: row.action,
        scope: row.scope_kind === null ? undefined : row.scope_kind === 'app' ? { kind: 'app', app: row.app ?? '' } : { kind: 'workspace' },
        secrets: row.secrets,
        instanceId: row.instance_id,
        outcome: row.outcome,
        reason: row.reason,
      })),
      nextPageToken: rows.length > pageSize && last !== undefined ? encodePageToken(filters, last.id) : '',
    };
  }
}
