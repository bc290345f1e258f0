import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isErrno } from '../errors/errno.js';

/** A source of revoked serials a RevocationList polls, such as the scheduler's ListRevokedCertificates. */
export interface RevocationFeed {
  /** Where the serials come from, for messages ("the scheduler at https://..."). */
  readonly name: string;
  /** Every serial revoked now; rejects when the source cannot answer. */
  fetch(signal: AbortSignal): Promise<readonly string[]>;
}

export interface FollowOptions {
  /** How often to poll; revocations take effect within about this long. */
  readonly intervalMs?: number;
  /** A feed not fetched for this long is unavailable: node and user certificates are refused. */
  readonly staleAfterMs?: number;
}

const DEFAULT_POLL_MS = 1_000;
const DEFAULT_STALE_AFTER_MS = 15_000;

interface Following {
  readonly feed: RevocationFeed;
  readonly staleAfterMs: number;
  readonly stop: AbortController;
  serials: ReadonlySet<string>;
  fetchedAt: number | undefined;
  lastError: string | undefined;
}

/**
 * Serial numbers of certificates that must no longer be accepted: an
 * operator's text file (one hex serial per line, `#` comments), re-read when
 * it changes, and optionally a feed polled every second (the scheduler's
 * revocations of removed nodes, so they reach every host). A file that is
 * missing or cannot be read, or a feed not fetched recently, is not an empty
 * list: `unavailable` says why, and callers refuse the certificates it could
 * have revoked until it reads again.
 */
export class RevocationList {
  private serials = new Set<string>();
  private problem: string | undefined;
  private following: Following | undefined;

  private constructor(private readonly path: string | undefined) {}

  static empty(): RevocationList {
    return new RevocationList(undefined);
  }

  static async fromFile(path: string, options: { watch?: boolean } = {}): Promise<RevocationList> {
    const list = new RevocationList(path);
    await list.reload();
    if (options.watch) {
      // Polling works on every filesystem and survives the file being replaced.
      // reload() never rejects: a failure is kept in `unavailable`.
      watchFile(path, { interval: 2000, persistent: false }, () => void list.reload());
    }
    return list;
  }

  has(serialHex: string): boolean {
    const serial = normalizeSerial(serialHex);
    return this.serials.has(serial) || (this.following?.serials.has(serial) ?? false);
  }

  /** Why the list cannot be trusted right now (file missing or unreadable, feed stale), or undefined. */
  get unavailable(): string | undefined {
    return this.problem ?? this.feedProblem();
  }

  /**
   * Adds `feed`'s serials, fetched now and then every `intervalMs`. Until the
   * first fetch succeeds, and whenever the last success is older than
   * `staleAfterMs`, the list is unavailable. One feed per list.
   */
  follow(feed: RevocationFeed, options: FollowOptions = {}): void {
    if (this.following !== undefined) throw new Error(`this revocation list already follows ${this.following.feed.name}`);
    const intervalMs = options.intervalMs ?? DEFAULT_POLL_MS;
    const following: Following = {
      feed,
      staleAfterMs: options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
      stop: new AbortController(),
      serials: new Set(),
      fetchedAt: undefined,
      lastError: undefined,
    };
    this.following = following;
    const poll = async () => {
      const started = Date.now();
      try {
        const serials = await feed.fetch(
          AbortSignal.any([following.stop.signal, AbortSignal.timeout(Math.ceil(Math.max(intervalMs, following.staleAfterMs / 3)))]),
        );
        following.serials = new Set(serials.map(normalizeSerial));
        following.fetchedAt = started;
        following.lastError = undefined;
      } catch (error) {
        following.lastError = error instanceof Error ? error.message : String(error);
      }
      if (!following.stop.signal.aborted) setTimeout(poll, intervalMs).unref();
    };
    void poll();
  }

  async reload(): Promise<void> {
    if (!this.path) return;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      this.problem = isErrno(error, 'ENOENT')
        ? `the revocation list ${this.path} does not exist (create it empty if nothing is revoked)`
        : `the revocation list ${this.path} cannot be read (${error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error)})`;
      return;
    }
    this.problem = undefined;
    this.serials = new Set(
      text
        .split('\n')
        .map((line) => line.replace(/#.*/, '').trim())
        .filter((line) => line.length > 0)
        .map(normalizeSerial),
    );
  }

  close(): void {
    if (this.path) unwatchFile(this.path);
    this.following?.stop.abort();
  }

  private feedProblem(): string | undefined {
    const following = this.following;
    if (following === undefined) return undefined;
    const why = following.lastError === undefined ? '' : ` (last error: ${following.lastError})`;
    if (following.fetchedAt === undefined) return `revocations from ${following.feed.name} have not been fetched yet${why}`;
    const ageMs = Date.now() - following.fetchedAt;
    if (ageMs > following.staleAfterMs) return `revocations from ${following.feed.name} were last fetched ${Math.round(ageMs / 1000)} s ago${why}`;
    return undefined;
  }
}

/** Serials compare as lowercase hex without leading zeros or separators. */
export function normalizeSerial(serial: string): string {
  return serial
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '')
    .replace(/^0+(?=.)/, '');
}
