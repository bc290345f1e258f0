import type { Logger } from '@shellwego/kit/log';
import pg from 'pg';

const RECONNECT_MS = 1_000;

/**
 * LISTENs on one Postgres channel on a connection of its own (a pooled one
 * would be handed to other queries) and calls `onNotify` for every
 * notification and after every reconnect, since notifications sent while it
 * was away are lost.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onNotify: () => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000 });
    this.client = client;
    client.on('notification', () => this.onNotify());
    client.on('error', (error) => {
      this.logger.warn({ err: error.message, channel: this.channel }, 'event notification connection failed; reconnecting');
      this.reconnect(client);
    });
    client.on('end', () => this.reconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
      this.onNotify();
    } catch (error) {
      this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'cannot listen for event notifications; retrying');
      this.reconnect(client);
    }
  }

  private reconnect(client: pg.Client): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.retry = setTimeout(() => void this.connect(), RECONNECT_MS);
    this.retry.unref();
  }
}
