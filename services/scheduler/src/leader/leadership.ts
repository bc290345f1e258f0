import type { Logger } from '@shellwego/kit/log';
import pg from 'pg';
import type { SchedulerDb } from '../store/tables.js';
import { LEADER_LOCK, LOCK_CLASS } from '../store/write-transaction.js';
import type { Leader } from './leader.js';

export interface LeadershipOptions {
  /** The Postgres URL; undefined for embedded PGlite, where this process is the only one and always active. */
  readonly postgresUrl: string | undefined;
  readonly db: SchedulerDb;
  readonly pollMs: number;
  readonly logger: Logger;
  /** Who this process is, for the `leader` row standbys quote to callers. */
  readonly holder: string;
  readonly url: string;
  /** Builds the active scheduler once the lock is held. */
  readonly elect: () => Promise<Leader>;
}

/**
 * Active/standby between scheduler processes sharing one Postgres: the
 * active one holds a session-level advisory lock on a connection of its own.
 * If that process dies, Postgres drops the connection and the lock, and a
 * standby polling pg_try_advisory_lock takes over within one poll interval.
 * If the active process loses the connection, it stops acting at once.
 */
export class Leadership {
  private current: Leader | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(private readonly options: LeadershipOptions) {}

  /** The active scheduler in this process, if this process is the active one. */
  get leader(): Leader | undefined {
    return this.current;
  }

  /** With PGlite, resolves once active (a failure there fails start-up); with Postgres, campaigns in the background. */
  async start(): Promise<void> {
    if (this.options.postgresUrl === undefined) {
      this.current = await this.options.elect();
      await this.record();
      return;
    }
    this.loop = this.campaign(this.options.postgresUrl);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.loop;
    await this.depose('shutting down');
  }

  /** "the active scheduler is host:pid at https://..." for errors on a standby. */
  async describeActive(): Promise<string> {
    try {
      const row = await this.options.db.selectFrom('leader').selectAll().where('id', '=', 1).executeTakeFirst();
      return row === undefined
        ? 'no scheduler has been active yet'
        : `the active scheduler is ${row.holder} at ${row.url} (active since ${row.since.toISOString()})`;
    } catch {
      return 'the active scheduler is unknown (the database did not answer)';
    }
  }

  private async campaign(url: string): Promise<void> {
    while (!this.stopped) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
      let lost: string | undefined;
      client.on('error', (error) => {
        lost = error.message;
        this.wakeUp?.();
      });
      client.on('end', () => {
        lost ??= 'the connection holding the leader lock closed';
        this.wakeUp?.();
      });
      try {
        await client.connect();
        let held = false;
        while (!this.stopped && lost === undefined && !held) {
          const result = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS held', [LOCK_CLASS, LEADER_LOCK]);
          held = result.rows[0]?.held === true;
          if (!held) await this.sleep();
        }
        if (held && !this.stopped && lost === undefined) {
          this.current = await this.options.elect();
          await this.record();
          this.options.logger.info({ holder: this.options.holder }, 'this scheduler is now the active one');
          while (!this.stopped && lost === undefined) {
            await this.sleep();
            if (!this.stopped && lost === undefined) await client.query('SELECT 1');
          }
        }
      } catch (error) {
        lost ??= error instanceof Error ? error.message : String(error);
      }
      await this.depose(this.stopped ? 'shutting down' : `lost the leader lock: ${lost ?? 'unknown reason'}`);
      await client.end().catch(() => undefined);
      if (!this.stopped) {
        this.options.logger.warn({ reason: lost }, 'standby: retrying to become the active scheduler');
        await this.sleep();
      }
    }
  }

  private async depose(reason: string): Promise<void> {
    const leader = this.current;
    if (leader === undefined) return;
    this.current = undefined;
    this.options.logger.warn({ reason }, 'this scheduler stopped being the active one');
    await leader.stop(reason);
  }

  private async record(): Promise<void> {
    const row = { id: 1, holder: this.options.holder, url: this.options.url, since: new Date() };
    await this.options.db
      .insertInto('leader')
      .values(row)
      .onConflict((oc) => oc.column('id').doUpdateSet({ holder: row.holder, url: row.url, since: row.since }))
      .execute();
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.pollMs);
      this.wakeUp = done;
    });
  }
}
