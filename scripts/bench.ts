// `npm run bench [name...]`: runs every benchmark, `services/<name>/bench/*.bench.ts`, the CLI's
// in `cli/bench/*.bench.ts` and the cross-service ones in `test/bench/*.bench.ts` (or those whose
// file name starts with one of the names), one after the other, and ends with one table of every result: its
// target, the measured value, the baseline measured in the same run, their ratio and a verdict
// (@shellwego/testing/bench/verdict): MET, MISSED, `-` for a result without a target, NOT RUN with the
// reason when this host lacks what the benchmark needs, FAILED with the message when it threw.
//
// Exit code: 1 when anything FAILED (a benchmark threw, returned nothing or lost a sample), so a
// broken benchmark is never mistaken for a report. MISSED and NOT RUN exit 0: benchmarks are
// reports, not gates (their numbers move with the load of a shared machine); the table and its
// summary line print both plainly. 2 when a name matches no benchmark.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from '@shellwego/testing/bench/bench-result';
import { type BenchRow, printBenchTable } from '@shellwego/testing/bench/bench-table';
import { benchName, exitCodeOf, runBench } from '@shellwego/testing/bench/run-bench';

const root = fileURLToPath(new URL('../', import.meta.url));
const wanted = process.argv.slice(2);
const benchDirs = [
  ...(await readdir(join(root, 'services'))).map((service) => join(root, 'services', service, 'bench')),
  join(root, 'cli/bench'),
  join(root, 'test/bench'),
];
const paths = new Map<string, string>();
for (const dir of benchDirs) {
  const files = await readdir(dir).catch(() => []);
  for (const file of files.filter((f) => f.endsWith('.bench.ts'))) paths.set(file, join(dir, file));
}
const all = [...paths.keys()].sort();
const unknown = wanted.filter((w) => !all.some((f) => f.startsWith(w)));
if (unknown.length > 0) {
  console.error(`no benchmark named ${unknown.join(', ')}; there are: ${all.map(benchName).join(', ')}`);
  process.exit(2);
}
const files = all.filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)));

const rows: BenchRow[] = [];
for (const file of files) {
  const bench = benchName(file);
  console.log(`## ${bench}`);
  const started = performance.now();
  const own = await runBench(bench, async () => {
    const module = (await import(pathToFileURL(paths.get(file) ?? file).href)) as { run?: unknown };
    if (typeof module.run !== 'function') throw new Error(`${file} exports no run()`);
    return (module.run as () => Promise<readonly BenchResult[]>)();
  });
  console.log(`## ${bench}: ${own.length} results in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  rows.push(...own);
}
printBenchTable(rows);
process.exit(exitCodeOf(rows));
