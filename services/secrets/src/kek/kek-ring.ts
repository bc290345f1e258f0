import { KekError } from './kek-error.js';
import type { LoadedKek } from './loaded-kek.js';

/**
 * The master key versions a process can use, oldest first. The newest is
 * current: new writes wrap under it; older ones stay for reading and re-wrap.
 */
export class KekRing {
  readonly #byId: ReadonlyMap<string, LoadedKek>;
  readonly #ordered: readonly LoadedKek[];

  constructor(keks: readonly LoadedKek[]) {
    const byId = new Map<string, LoadedKek>();
    for (const kek of keks) {
      if (byId.has(kek.id)) throw new Error(`master key ${kek.id} appears twice in the key ring`);
      byId.set(kek.id, kek);
    }
    this.#byId = byId;
    this.#ordered = [...keks];
  }

  get ids(): readonly string[] {
    return this.#ordered.map((k) => k.id);
  }

  get size(): number {
    return this.#ordered.length;
  }

  get(id: string): LoadedKek | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** The key new writes use; throws when the ring is empty. */
  current(): LoadedKek {
    const kek = this.#ordered.at(-1);
    if (kek === undefined) throw new KekError('no-key', 'no master key is loaded; the secrets service must load or create one at start-up');
    return kek;
  }

  /** A ring with `kek` added as the newest (after a rotation). */
  with(kek: LoadedKek): KekRing {
    return new KekRing([...this.#ordered, kek]);
  }
}
