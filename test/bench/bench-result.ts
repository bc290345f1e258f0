/** One number a benchmark reports, next to the baseline measured in the same run. */
export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: { readonly name: string; readonly value: number };
  readonly ratio?: number;
  readonly target?: string;
}

/** Prints results as an aligned table, for running one benchmark file directly with tsx. */
export function printBenchTable(results: readonly BenchResult[]): void {
  const rows = results.map((result) => [
    result.name,
    `${result.value} ${result.unit}`,
    result.baseline === undefined ? '' : `${result.baseline.name}: ${result.baseline.value}`,
    result.ratio === undefined ? '' : `x${result.ratio}`,
    result.target ?? '',
  ]);
  const header = ['benchmark', 'value', 'baseline', 'ratio', 'target'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ');
  console.log(line(header));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
}
