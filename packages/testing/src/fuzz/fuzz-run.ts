// One way to run a property-based fuzz suite (fast-check): a bounded case count in CI, a seed that
// is printed with the counts so any run can be replayed, and a longer mode for soak runs.
//   SHELLWEGO_FUZZ_SEED=<n>      replay a run (default: a fixed seed, so CI is reproducible)
//   SHELLWEGO_FUZZ_SEED=random   a fresh seed each run (printed)
//   SHELLWEGO_FUZZ_SCALE=<k>     k times the CI case count (the longer mode, e.g. 50)
import fc from 'fast-check';

/**
 * Per-test timeout for a fuzz suite: its case count is bounded, but on a loaded 2-core CI host a
 * suite that takes 5 s alone has taken over 30 s (vitest's default here).
 */
export const FUZZ_TIMEOUT_MS = 300_000;

/** The longest failure report printed. */
const MAX_REPORT_CHARS = 4_000;

/** The seed CI uses unless told otherwise. */
const DEFAULT_SEED = 20261204;

export interface FuzzSettings {
  readonly seed: number;
  readonly numRuns: number;
}

export function fuzzSettings(ciRuns: number, env: NodeJS.ProcessEnv = process.env): FuzzSettings {
  const seedText = env.SHELLWEGO_FUZZ_SEED ?? '';
  const seed = seedText === '' ? DEFAULT_SEED : seedText === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  if (!Number.isSafeInteger(seed)) throw new Error(`SHELLWEGO_FUZZ_SEED=${JSON.stringify(seedText)} is not an integer or "random"`);
  const scale = Number(env.SHELLWEGO_FUZZ_SCALE ?? '1');
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`SHELLWEGO_FUZZ_SCALE=${JSON.stringify(env.SHELLWEGO_FUZZ_SCALE)} is not a positive number`);
  return { seed, numRuns: Math.max(1, Math.round(ciRuns * scale)) };
}

/** Outcome counts a property records, printed with the run so a degenerate generator shows. */
export class FuzzTally {
  private readonly counts = new Map<string, number>();

  count(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }

  get(outcome: string): number {
    return this.counts.get(outcome) ?? 0;
  }

  toString(): string {
    return [...this.counts].map(([outcome, n]) => `${n} ${outcome}`).join(', ');
  }
}

/**
 * Runs `property` for the suite's case count and prints one line: cases, seed, outcomes, time.
 * A failure throws fast-check's report (counterexample, seed and path), prefixed with how to replay.
 */
export async function runFuzz<T>(name: string, ciRuns: number, property: fc.IAsyncProperty<T> | fc.IProperty<T>, tally?: FuzzTally): Promise<void> {
  const { seed, numRuns } = fuzzSettings(ciRuns);
  const started = performance.now();
  try {
    await fc.assert(property, { seed, numRuns });
  } catch (error) {
    // fast-check's report holds the counterexample: cut to a readable size (inputs can be megabytes).
    const report = (error as Error).message;
    const shown = report.length > MAX_REPORT_CHARS ? `${report.slice(0, MAX_REPORT_CHARS)}… (${report.length} characters)` : report;
    throw new Error(`fuzz ${name} failed; replay with SHELLWEGO_FUZZ_SEED=${seed}: ${shown}`, { cause: (error as Error).cause });
  }
  const ms = Math.round(performance.now() - started);
  console.log(`fuzz ${name}: ${numRuns} cases, seed ${seed}${tally ? `, ${tally.toString()}` : ''}, ${ms} ms`);
}
