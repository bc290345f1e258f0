import { SecretDecryptError } from './crypto/index.js';
import type { KekSource, LoadedKek } from './kek/index.js';
import { KekRing } from './kek/index.js';

/**
 * The process's current master key ring. Rotation adds to it; a blob
 * naming a key this process does not hold yet (another replica rotated)
 * makes it reload from the source once and retry.
 */
export class KeyRingHolder {
  readonly source: KekSource;
  #ring: KekRing;
  #reloading: Promise<KekRing> | undefined;

  constructor(source: KekSource, ring: KekRing) {
    this.source = source;
    this.#ring = ring;
  }

  get ring(): KekRing {
    return this.#ring;
  }

  /** The key new writes wrap under. */
  current(): LoadedKek {
    return this.#ring.current();
  }

  /** Makes `kek` (just created by rotation) the current key. */
  add(kek: LoadedKek): void {
    if (!this.#ring.has(kek.id)) this.#ring = this.#ring.with(kek);
  }

  /**
   * Re-reads the source. Keys this process already holds stay even if the
   * source stops listing them (a file removed under a running process), so
   * a reload can never make a readable secret unreadable.
   */
  reload(): Promise<KekRing> {
    this.#reloading ??= (async () => {
      try {
        const listed = await this.source.list();
        const listedIds = new Set(listed.map((kek) => kek.id));
        const kept = this.#ring.ids.filter((id) => !listedIds.has(id)).map((id) => this.#ring.get(id) as LoadedKek);
        this.#ring = new KekRing([...kept, ...listed]);
        return this.#ring;
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /** Runs `use` with the ring; on an unknown KEK id, reloads once and runs it again. */
  async withRing<T>(use: (ring: KekRing) => T | Promise<T>): Promise<T> {
    try {
      return await use(this.#ring);
    } catch (err) {
      if (!(err instanceof SecretDecryptError && err.reason === 'unknown-kek')) throw err;
      const after = await this.reload();
      if (err.kekId === undefined || !after.has(err.kekId)) throw err;
      return use(after);
    }
  }
}
