// `npm run bench [name...]`: runs every test/bench/*.bench.ts (or the named
// ones) and prints each result next to the baseline measured in the same run.
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type { BenchResult } from '../test/bench/bench-result.js';

const dir = fileURLToPath(new URL('../test/bench/', import.meta.url));
const wanted = process.argv.slice(2);
const files = (await readdir(dir))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();

const format = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toPrecision(3));
let failed = false;
for (const file of files) {
  process.stdout.write(`\n## ${file}\n`);
  try {
    const module = (await import(pathToFileURL(join(dir, file)).href)) as { run: () => Promise<BenchResult[]> };
    for (const r of await module.run()) {
      const baseline = r.baseline ? `  baseline ${r.baseline.name}: ${format(r.baseline.value)} ${r.unit}` : '';
      const ratio = r.ratio !== undefined ? `  ratio ${r.ratio.toFixed(2)}` : '';
      const target = r.target ? `  (target: ${r.target})` : '';
      process.stdout.write(`${r.name}: ${format(r.value)} ${r.unit}${baseline}${ratio}${target}\n`);
    }
  } catch (error) {
    failed = true;
    process.stdout.write(`failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  }
}
process.exit(failed ? 1 : 0);
