/**
 * Counts writes in progress per master key, so a rotation can wait for the
 * writes that picked the old key just before it became current; without
 * that, one could commit behind the re-wrap and stay under the old key.
 */
export class InFlightWrites {
  readonly #counts = new Map<string, number>();
  readonly #waiters = new Set<{ kekId: string; resolve: () => void }>();

  /** Runs `write` counted under `kekId`. */
  async track<T>(kekId: string, write: () => Promise<T>): Promise<T> {
    this.#counts.set(kekId, (this.#counts.get(kekId) ?? 0) + 1);
    try {
      return await write();
    } finally {
      const left = (this.#counts.get(kekId) ?? 1) - 1;
      if (left === 0) this.#counts.delete(kekId);
      else this.#counts.set(kekId, left);
      for (const waiter of this.#waiters) {
        if (this.#onlyUnder(waiter.kekId)) {
          this.#waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  }

  /** Resolves once no write under any key other than `kekId` is in progress. */
  settledExcept(kekId: string): Promise<void> {
    if (this.#onlyUnder(kekId)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.add({ kekId, resolve }));
  }

  #onlyUnder(kekId: string): boolean {
    for (const id of this.#counts.keys()) if (id !== kekId) return false;
    return true;
  }
}
