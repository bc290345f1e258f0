// `npm run lint`: contract lint and format, breaking-change check against the
// newest release, and the TypeScript type check.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { breakingAgainstRelease, contractsDir, lintContracts } from '@shellwego/contracts/checks';

const root = fileURLToPath(new URL('../', import.meta.url));
let failed = false;

for (const check of [lintContracts(contractsDir), breakingAgainstRelease(contractsDir)]) {
  process.stdout.write(`${check.output}\n`);
  failed ||= !check.ok;
}
const tsc = spawnSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
process.stdout.write(tsc.status === 0 ? 'tsc: no type errors\n' : 'tsc: type errors above\n');
failed ||= tsc.status !== 0;
process.exit(failed ? 1 : 0);
