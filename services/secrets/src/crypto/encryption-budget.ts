/**
 * Default cap on encryptions under one master key. NIST SP 800-38D (8.3)
 * limits AES-GCM with random 96-bit nonces to 2^32 invocations per key, which
 * keeps the nonce collision probability under 2^-32. Stopping at 2^31 leaves
 * a factor-two margin (collision probability about 2^-35) for counts lost to
 * crashes or chunked reservations. Only the data-key wraps count: each data
 * key encrypts exactly one value, so its own nonce can never repeat.
 */
export const DEFAULT_KEK_ENCRYPTION_LIMIT = 2 ** 31;

/**
 * Counts encryptions per master key. reserve() records `count` encryptions
 * under `kekId` BEFORE they happen and throws EncryptionLimitError if that
 * would pass the limit; the database implementation does it in one atomic
 * statement, e.g.
 *   UPDATE keks SET encryptions = encryptions + $count
 *    WHERE id = $kekId AND encryptions + $count <= $limit RETURNING encryptions
 * (no row: throw EncryptionLimitError).
 */
export interface EncryptionBudget {
  reserve(kekId: string, count: number): Promise<void>;
}

export class EncryptionLimitError extends Error {
  override readonly name = 'EncryptionLimitError';
  readonly kekId: string;
  readonly limit: number;

  constructor(kekId: string, limit: number) {
    super(`master key ${kekId} has reached its limit of ${limit} encryptions; rotate the master key (shellwego secret rotate-key), then retry`);
    this.kekId = kekId;
    this.limit = limit;
  }
}

/** A budget held in memory: for tests and tools; the service persists counts instead. */
export class InMemoryEncryptionBudget implements EncryptionBudget {
  readonly limit: number;
  readonly #used = new Map<string, number>();

  constructor(limit = DEFAULT_KEK_ENCRYPTION_LIMIT, initial: Readonly<Record<string, number>> = {}) {
    this.limit = limit;
    for (const [kekId, used] of Object.entries(initial)) this.#used.set(kekId, used);
  }

  used(kekId: string): number {
    return this.#used.get(kekId) ?? 0;
  }

  reserve(kekId: string, count: number): Promise<void> {
    assertCount(count);
    const used = this.used(kekId);
    if (used + count > this.limit) return Promise.reject(new EncryptionLimitError(kekId, this.limit));
    this.#used.set(kekId, used + count);
    return Promise.resolve();
  }
}

/**
 * Reserves from `inner` in chunks and hands them out locally, so a busy
 * service makes one database round trip per `chunkSize` writes instead of one
 * per write. A process that exits leaves at most chunkSize - 1 reserved
 * encryptions unused: they are counted but never performed, which errs on the
 * safe side. Near the limit it falls back to reserving exactly what is asked.
 */
export class ChunkedEncryptionBudget implements EncryptionBudget {
  readonly #inner: EncryptionBudget;
  readonly #chunkSize: number;
  readonly #left = new Map<string, number>();
  // Per key, the tail of the reservation queue: reservations for one key run
  // one after another so two callers never both top up the same shortfall.
  readonly #tail = new Map<string, Promise<void>>();

  constructor(inner: EncryptionBudget, chunkSize = 256) {
    assertCount(chunkSize);
    this.#inner = inner;
    this.#chunkSize = chunkSize;
  }

  reserve(kekId: string, count: number): Promise<void> {
    assertCount(count);
    const run = (this.#tail.get(kekId) ?? Promise.resolve()).then(() => this.#take(kekId, count));
    this.#tail.set(
      kekId,
      run.catch(() => undefined),
    );
    return run;
  }

  async #take(kekId: string, count: number): Promise<void> {
    const left = this.#left.get(kekId) ?? 0;
    if (left >= count) {
      this.#left.set(kekId, left - count);
      return;
    }
    const shortfall = count - left;
    const chunk = Math.max(shortfall, this.#chunkSize);
    try {
      await this.#inner.reserve(kekId, chunk);
      this.#left.set(kekId, left + chunk - count);
    } catch (err) {
      if (!(err instanceof EncryptionLimitError) || chunk === shortfall) throw err;
      await this.#inner.reserve(kekId, shortfall);
      this.#left.set(kekId, 0);
    }
  }
}

function assertCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`encryption count must be a positive integer, got ${count}`);
}
