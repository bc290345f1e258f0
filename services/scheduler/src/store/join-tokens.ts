import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { CapacityCeiling, SchedulerDb, SchedulerTx } from './tables.js';

/** `swj1.<public id>.<secret>`: the id may be logged and audited, the whole value never. */
const TOKEN_FORMAT = /^swj1\.([0-9a-f]{16})\.[A-Za-z0-9_-]{43}$/;

export interface CreatedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: Date;
}

export type TokenRefusal = 'malformed-token' | 'unknown-token' | 'used-token' | 'expired-token';

export type TokenCheck =
  | { readonly ok: true; readonly tokenId: string; readonly labels: Record<string, string>; readonly capacityCeiling: CapacityCeiling | null }
  | { readonly ok: false; readonly refusal: TokenRefusal; readonly tokenId: string | undefined };

export interface JoinAttempt {
  readonly tokenId: string | undefined;
  readonly outcome: 'joined' | 'bad-csr' | TokenRefusal;
  readonly nodeId: string | undefined;
  readonly hostname: string;
  /** The caller's IP address. */
  readonly source: string;
}

/**
 * Single-use join tokens, stored as SHA-256 hashes. Using one is one atomic
 * UPDATE that only matches an unused, unexpired token, so two nodes racing
 * with the same token cannot both join.
 */
export class JoinTokens {
  constructor(private readonly db: SchedulerDb) {}

  async create(labels: Record<string, string>, capacityCeiling: CapacityCeiling | null, ttlMs: number, createdBy: string): Promise<CreatedToken> {
    const tokenId = randomBytes(8).toString('hex');
    const token = `swj1.${tokenId}.${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(Date.now() + ttlMs);
    await this.db
      .insertInto('join_token')
      .values({
        id: tokenId,
        token_hash: hashToken(token),
        labels: JSON.stringify(labels),
        capacity_ceiling: capacityCeiling === null ? null : JSON.stringify(capacityCeiling),
        created_by: createdBy,
        expires_at: expiresAt,
        used_at: null,
        used_by_node: null,
      })
      .execute();
    return { token, tokenId, expiresAt };
  }

  /** Looks a token up without using it, so a bad one is refused before any CSR is signed. */
  async check(token: string): Promise<TokenCheck> {
    const tokenId = TOKEN_FORMAT.exec(token)?.[1];
    if (tokenId === undefined) return { ok: false, refusal: 'malformed-token', tokenId: undefined };
    const row = await this.db
      .selectFrom('join_token')
      .select(['id', 'labels', 'capacity_ceiling', 'used_at', sql<boolean>`expires_at <= now()`.as('expired')])
      .where('token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (row === undefined) return { ok: false, refusal: 'unknown-token', tokenId };
    if (row.used_at !== null) return { ok: false, refusal: 'used-token', tokenId: row.id };
    if (row.expired) return { ok: false, refusal: 'expired-token', tokenId: row.id };
    return { ok: true, tokenId: row.id, labels: row.labels, capacityCeiling: row.capacity_ceiling };
  }

  /** Marks the token used by `nodeId` if it still is unused and unexpired. */
  async consume(trx: SchedulerTx, token: string, nodeId: string): Promise<TokenCheck> {
    const used = await trx
      .updateTable('join_token')
      .set({ used_at: sql<Date>`now()`, used_by_node: nodeId })
      .where('token_hash', '=', hashToken(token))
      .where('used_at', 'is', null)
      .where(sql<boolean>`expires_at > now()`)
      .returning(['id', 'labels', 'capacity_ceiling'])
      .executeTakeFirst();
    if (used !== undefined) return { ok: true, tokenId: used.id, labels: used.labels, capacityCeiling: used.capacity_ceiling };
    // Lost a race, or expired between check and use.
    const again = await this.check(token);
    return again.ok ? { ok: false, refusal: 'used-token', tokenId: again.tokenId } : again;
  }

  async audit(attempt: JoinAttempt, trx: SchedulerTx | SchedulerDb = this.db): Promise<void> {
    await trx
      .insertInto('join_attempt')
      .values({
        token_id: attempt.tokenId ?? null,
        outcome: attempt.outcome,
        node_id: attempt.nodeId ?? null,
        hostname: attempt.hostname,
        source: attempt.source,
      })
      .execute();
  }
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
