// The one printer of benchmark results, for `npm run bench` and for a bench file run directly.
import { type BenchOutcome, describeTarget, ratioOf, verdictOf } from './verdict.js';

/** One result of one benchmark file (`bench` is the file name without `.bench.ts`). */
export interface BenchRow {
  readonly bench: string;
  readonly outcome: BenchOutcome;
}

const number = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toPrecision(3));

/** A reason on one line, so a multi-line error message cannot break the table. */
const oneLine = (text: string): string => text.split('\n')[0]?.trim() ?? '';

function cells({ bench, outcome }: BenchRow): string[] {
  const verdict = verdictOf(outcome);
  const shown = 'reason' in verdict ? `${verdict.status}: ${oneLine(verdict.reason)}` : verdict.status;
  const target = 'target' in outcome && outcome.target !== undefined ? describeTarget(outcome.target) : '';
  if (!('value' in outcome)) return [`${bench}: ${outcome.name}`, target, '', '', '', shown];
  const ratio = ratioOf(outcome);
  return [
    `${bench}: ${outcome.name}`,
    target,
    `${number(outcome.value)} ${outcome.unit}`,
    outcome.baseline === undefined ? '' : `${outcome.baseline.name}: ${number(outcome.baseline.value)} ${outcome.unit}`,
    ratio === undefined ? '' : `${number(ratio)}x`,
    shown,
  ];
}

/** Prints the rows as one aligned table, then how many met, missed, did not run and failed. */
export function printBenchTable(rows: readonly BenchRow[], write: (line: string) => void = console.log): void {
  const header = ['benchmark', 'target', 'measured', 'baseline', 'ratio', 'verdict'];
  const body = rows.map(cells);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  write(line(header));
  write(line(widths.map((width) => '-'.repeat(width))));
  for (const row of body) write(line(row));
  const counts = new Map<string, number>();
  for (const row of rows) {
    const status = verdictOf(row.outcome).status;
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  const summary = (['MET', 'MISSED', 'NOT RUN', 'FAILED', '-'] as const).map(
    (status) => `${counts.get(status) ?? 0} ${status === '-' ? 'without target' : status}`,
  );
  write(`\n${summary.join(', ')}`);
}
