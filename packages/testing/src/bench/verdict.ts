// The one place that decides whether a benchmark result met its target, so no benchmark grades
// itself and every target reads the same way in the table.
import type { BenchMeasurement, BenchResult, BenchTarget, Bound } from './bench-result.js';

/** A benchmark that threw, could not be loaded or returned nothing: reported in place of its results. */
export interface BenchFailure {
  readonly name: string;
  readonly failed: string;
}

export type BenchOutcome = BenchResult | BenchFailure;

export type Verdict = { readonly status: 'MET' | 'MISSED' | '-' } | { readonly status: 'NOT RUN' | 'FAILED'; readonly reason: string };

const SYMBOLS: Record<Bound, string> = { below: '<', atMost: '<=', atLeast: '>=' };

/** The target as a person would write it: "< 20 ms", ">= 0.5x baseline". */
export function describeTarget(target: BenchTarget): string {
  return target.on === 'value' ? `${SYMBOLS[target.bound]} ${target.value} ${target.unit}` : `${SYMBOLS[target.bound]} ${target.value}x baseline`;
}

/** Measured value over the baseline's, when there is a baseline to divide by. */
export function ratioOf(result: BenchMeasurement): number | undefined {
  if (result.baseline === undefined || result.baseline.value === 0) return undefined;
  const ratio = result.value / result.baseline.value;
  return Number.isFinite(ratio) ? ratio : undefined;
}

function meets(actual: number, bound: Bound, limit: number): boolean {
  switch (bound) {
    case 'below':
      return actual < limit;
    case 'atMost':
      return actual <= limit;
    case 'atLeast':
      return actual >= limit;
  }
}

export function verdictOf(outcome: BenchOutcome): Verdict {
  if ('failed' in outcome) return { status: 'FAILED', reason: outcome.failed };
  if ('notRun' in outcome) return { status: 'NOT RUN', reason: outcome.notRun };
  // NaN or Infinity means a sample went missing; grading it would hide a broken benchmark.
  if (!Number.isFinite(outcome.value)) return { status: 'FAILED', reason: `measured ${outcome.value}: a sample is missing` };
  const target = outcome.target;
  if (target === undefined) return { status: '-' };
  if (target.on === 'value') {
    // A target in MB checked against MiB (or ms against s) would be silently wrong.
    if (target.unit !== outcome.unit) return { status: 'FAILED', reason: `the target is in ${target.unit} but the value in ${outcome.unit}` };
    return { status: meets(outcome.value, target.bound, target.value) ? 'MET' : 'MISSED' };
  }
  const ratio = ratioOf(outcome);
  if (ratio === undefined) return { status: 'FAILED', reason: 'a ratio target needs a non-zero baseline' };
  return { status: meets(ratio, target.bound, target.value) ? 'MET' : 'MISSED' };
}
