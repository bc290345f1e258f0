import { KekError } from './kek-error.js';
import { KekRing } from './kek-ring.js';
import type { KekSource } from './kek-source.js';

/**
 * The start-up rule: every KEK id the database references must be loadable
 * from `source`. Returns the loaded ring; throws KekError 'orphaned' naming
 * each missing key and how to restore it. Never creates a key.
 */
export async function assertKeysCover(referencedKekIds: readonly string[], source: KekSource): Promise<KekRing> {
  const ring = new KekRing(await source.list());
  const missing = [...new Set(referencedKekIds)].filter((id) => !ring.has(id));
  if (missing.length === 0) return ring;
  const reasons: string[] = [];
  for (const id of missing) reasons.push(`the database holds secrets encrypted under master key ${id}, but ${await source.explainMissing(id)}.`);
  throw new KekError('orphaned', `${reasons.join(' ')} Refusing to start so that no secret is orphaned.`);
}

/**
 * assertKeysCover, then creates the first key only when the database
 * references none and the source holds none. A lost race with another
 * replica creating the same first key is resolved by loading theirs.
 */
export async function loadOrCreateKekRing(referencedKekIds: readonly string[], source: KekSource): Promise<KekRing> {
  const ring = await assertKeysCover(referencedKekIds, source);
  if (ring.size > 0) return ring;
  try {
    return new KekRing([await source.create()]);
  } catch (err) {
    if (err instanceof KekError && err.code === 'exists') return assertKeysCover(referencedKekIds, source);
    throw err;
  }
}
