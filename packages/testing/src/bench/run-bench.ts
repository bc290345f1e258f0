// Runs one benchmark file's run() the same way for `npm run bench` and for a direct
// `npx tsx test/bench/<name>.bench.ts`: a throw or an empty list becomes a FAILED row.
import { basename, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { type BenchRow, printBenchTable } from './bench-table.js';
import { verdictOf } from './verdict.js';

export type BenchRun = () => Promise<readonly BenchResult[]>;

/** "placement" for placement.bench.ts. */
export function benchName(file: string): string {
  return basename(file, '.bench.ts');
}

export async function runBench(bench: string, run: BenchRun): Promise<BenchRow[]> {
  try {
    const results = await run();
    if (results.length === 0) return [{ bench, outcome: { name: 'run()', failed: 'returned no results (a benchmark that cannot run must say why)' } }];
    return results.map((outcome) => ({ bench, outcome }));
  } catch (error) {
    // The table shows the message's first line; the whole error goes to stderr.
    console.error(`[bench ${bench}] failed:`, error);
    return [{ bench, outcome: { name: 'run()', failed: error instanceof Error ? error.message : String(error) } }];
  }
}

/** 1 when any row FAILED; MISSED and NOT RUN do not change it (see scripts/bench.ts). */
export function exitCodeOf(rows: readonly BenchRow[]): number {
  return rows.some((row) => verdictOf(row.outcome).status === 'FAILED') ? 1 : 0;
}

/** When `moduleUrl` is the script tsx was started with: runs it, prints the table and exits. */
export async function runIfMain(moduleUrl: string, run: BenchRun): Promise<void> {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(resolve(process.argv[1])).href) return;
  const started = performance.now();
  const rows = await runBench(benchName(fileURLToPath(moduleUrl)), run);
  printBenchTable(rows);
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  process.exit(exitCodeOf(rows));
}
