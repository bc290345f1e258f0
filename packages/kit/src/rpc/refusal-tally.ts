import type { Logger } from 'pino';

// Bounds the line an attacker choosing many addresses or reasons can make.
const MAX_KEYS = 20;
const OTHERS = 'others';

/**
 * Counts refusals to callers without a usable certificate (and connections turned away)
 * and logs them as one line per interval, by kind, source address and reason, so a flood
 * of anonymous calls costs one log line a minute rather than one per call.
 */
export class RefusalTally {
  #byKind = new Map<string, number>();
  #bySource = new Map<string, number>();
  #byReason = new Map<string, number>();
  #total = 0;
  #since = new Date();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  /** `kind` is e.g. "shellwego.scheduler.v1.AppService/ListApps unauthenticated" or "connection over per-peer limit". */
  record(kind: string, source: string, reason: string): void {
    if (this.#total === 0) this.#since = new Date();
    this.#total++;
    bump(this.#byKind, kind);
    bump(this.#bySource, source === '' ? 'unknown' : source);
    bump(this.#byReason, reason);
    this.#timer ??= setTimeout(() => this.flush(), this.intervalMs).unref();
  }

  /** Logs what was counted since the last line, if anything. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#total === 0) return;
    this.logger.warn(
      {
        refused: this.#total,
        since: this.#since.toISOString(),
        byKind: Object.fromEntries(this.#byKind),
        bySource: Object.fromEntries(this.#bySource),
        byReason: Object.fromEntries(this.#byReason),
      },
      'refused unauthenticated callers',
    );
    this.#total = 0;
    this.#byKind.clear();
    this.#bySource.clear();
    this.#byReason.clear();
  }
}

function bump(counts: Map<string, number>, key: string): void {
  const counted = counts.has(key) || counts.size < MAX_KEYS ? key : OTHERS;
  counts.set(counted, (counts.get(counted) ?? 0) + 1);
}
