import { normalizeSerial } from '@shellwego/kit/pki';
import { sql } from 'kysely';
import type { SchedulerDb, SchedulerTx } from './tables.js';

// Answers to ListRevokedCertificates are shared for this long: every service polls about once a second.
const SNAPSHOT_MS = 500;
// A revoked certificate stays listed a while past its expiry, for hosts whose clocks run behind.
const EXPIRED_GRACE = sql`interval '1 hour'`;

/**
 * Every certificate the CA issued to a node, so removing the node revokes
 * all of them (a renewed or stolen one included), and the revoked serials
 * every service follows.
 */
export class NodeCertificateLedger {
  private snapshot: { at: number; serials: Promise<string[]> } | undefined;

  constructor(private readonly db: SchedulerDb) {}

  async recordIssued(trx: SchedulerTx, nodeId: string, serial: string, notAfter: Date): Promise<void> {
    await trx
      .insertInto('node_certificate')
      .values({ serial: normalizeSerial(serial), node_id: nodeId, not_after: notAfter, revoked_at: null })
      .execute();
  }

  /** Every serial `nodeId` has held, oldest first. */
  async serialsOf(nodeId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('node_certificate').select('serial').where('node_id', '=', nodeId).orderBy('issued_at').orderBy('serial').execute();
    return rows.map((row) => row.serial);
  }

  /** Revoked serials whose certificates have not expired (plus a grace hour), at most SNAPSHOT_MS old. */
  revokedSerials(): Promise<string[]> {
    const now = Date.now();
    if (this.snapshot === undefined || now - this.snapshot.at > SNAPSHOT_MS) {
      const serials = this.db
        .selectFrom('node_certificate')
        .select('serial')
        .where('revoked_at', 'is not', null)
        .where(sql<boolean>`not_after > now() - ${EXPIRED_GRACE}`)
        .execute()
        .then((rows) => rows.map((row) => row.serial));
      // A failed read is not kept: the next caller tries again.
      serials.catch(() => {
        if (this.snapshot?.serials === serials) this.snapshot = undefined;
      });
      this.snapshot = { at: now, serials };
    }
    return this.snapshot.serials;
  }
}

/** Revokes every certificate `nodeId` has held, in the transaction that removes the node. */
export async function revokeNodeCertificates(trx: SchedulerTx, nodeId: string, at: Date): Promise<void> {
  await trx.updateTable('node_certificate').set({ revoked_at: at }).where('node_id', '=', nodeId).where('revoked_at', 'is', null).execute();
}
