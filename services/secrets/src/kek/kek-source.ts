import type { LoadedKek } from './loaded-kek.js';

/**
 * Where master keys come from. The file source implements it today; a KMS or
 * HSM source implements the same four members (typically by keeping local
 * KEKs wrapped by the KMS key and unwrapping them in list()).
 */
export interface KekSource {
  /** Where the keys live, for log lines and messages (never key material). */
  readonly description: string;
  /**
   * Every version this source can load, oldest first; [] when none exists
   * yet. Throws KekError when a key is present but unusable (permissions,
   * size, unreadable): an unusable key is never skipped silently.
   */
  list(): Promise<LoadedKek[]>;
  /**
   * Adds the next version and returns it. Never overwrites an existing key;
   * throws KekError 'exists' when another process created that version first.
   */
  create(): Promise<LoadedKek>;
  /**
   * Completes "the database holds secrets encrypted under master key <id>,
   * but ..." with where that key should be and how to restore it.
   */
  explainMissing(kekId: string): Promise<string>;
}
