import type { EncryptionBudget } from './crypto/index.js';

/**
 * Encryptions already reserved from the shared budget, handed out without
 * I/O. Writes reserve before opening their transaction and seal inside it
 * from one of these: on PGlite (one connection) a budget round trip from
 * inside a transaction would wait on that very transaction.
 */
export class ReservedEncryptions implements EncryptionBudget {
  readonly #kekId: string;
  #left: number;

  constructor(kekId: string, count: number) {
    this.#kekId = kekId;
    this.#left = count;
  }

  static async take(budget: EncryptionBudget, kekId: string, count: number): Promise<ReservedEncryptions> {
    await budget.reserve(kekId, count);
    return new ReservedEncryptions(kekId, count);
  }

  reserve(kekId: string, count: number): Promise<void> {
    if (kekId !== this.#kekId || count > this.#left) {
      return Promise.reject(new Error(`internal error: ${count} encryption(s) under ${kekId} were not reserved`));
    }
    this.#left -= count;
    return Promise.resolve();
  }
}
