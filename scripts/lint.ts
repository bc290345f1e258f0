// `npm run lint [check...]`: the contracts (buf lint and format, buf breaking against the newest
// release), the package boundaries (dependency-cruiser, .dependency-cruiser.cjs), lint and format
// of the TypeScript (Biome, biome.json) and the type check (tsc). Every check runs; the exit code
// is 1 when any failed. Name checks to run only those: contracts, boundaries, biome, tsc.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { breakingAgainstRelease, contractsDir, lintContracts } from '@shellwego/contracts/checks';

const root = fileURLToPath(new URL('../', import.meta.url));
const require = createRequire(import.meta.url);

interface CheckOutcome {
  readonly ok: boolean;
  readonly output: string;
}

function tool(bin: string, args: readonly string[], passed: string): CheckOutcome {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  return result.status === 0 ? { ok: true, output: passed } : { ok: false, output: output === '' ? `${bin} failed (exit ${result.status})` : output };
}

const checks: Record<string, () => CheckOutcome[]> = {
  contracts: () => [lintContracts(contractsDir), breakingAgainstRelease(contractsDir)],
  boundaries: () => [
    tool(
      // The package exports no bin path; npm links it here.
      join(root, 'node_modules/.bin/depcruise'),
      ['--config', '.dependency-cruiser.cjs', '--output-type', 'err', 'packages', 'services', 'cli', 'test', 'scripts', 'vitest.config.ts'],
      'boundaries: every import respects the package boundaries',
    ),
  ],
  biome: () => [tool(require.resolve('@biomejs/biome/bin/biome'), ['check', '--colors=off', '.'], 'biome: lint and format clean')],
  tsc: () => [tool(require.resolve('typescript/bin/tsc'), ['-p', 'tsconfig.json'], 'tsc: no type errors')],
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in checks));
if (unknown.length > 0) {
  console.error(`no lint check named ${unknown.join(', ')}; there are: ${Object.keys(checks).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const [name, run] of Object.entries(checks)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  for (const outcome of run()) {
    process.stdout.write(`${outcome.ok ? '' : `${name}: FAILED\n`}${outcome.output}\n`);
    failed ||= !outcome.ok;
  }
}
process.exit(failed ? 1 : 0);
