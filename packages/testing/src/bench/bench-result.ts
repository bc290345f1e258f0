/** How a number must compare to a target's value. */
export type Bound = 'below' | 'atMost' | 'atLeast';

/**
 * What the project asks of one benchmark number, in a form the runner can check: a bound on the
 * measured value (in the result's own unit, which must match) or on its ratio to the baseline.
 */
export type BenchTarget =
  | { readonly on: 'value'; readonly bound: Bound; readonly value: number; readonly unit: string }
  | { readonly on: 'ratio'; readonly bound: Bound; readonly value: number };

/** One number a benchmark measured, next to the baseline measured in the same run (same unit). */
export interface BenchMeasurement {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: { readonly name: string; readonly value: number };
  readonly target?: BenchTarget;
}

/** A measurement this host cannot make, and why; the target it would have been held to, if any. */
export interface BenchNotRun {
  readonly name: string;
  readonly notRun: string;
  readonly target?: BenchTarget;
}

/** What a benchmark's run() reports: one entry per number, never an empty list. */
export type BenchResult = BenchMeasurement | BenchNotRun;
