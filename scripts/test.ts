// `npm test`: sets up the host (Debian packages, the test Postgres), then runs the whole suite in
// strict mode (SHELLWEGO_TEST_STRICT=1: a skipped test fails the run) unless the caller set the
// variable. Arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const run = (command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): void => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

run('bash', ['deploy/setup-host.sh']);
run('bash', ['deploy/setup-test-postgres.sh']);
run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)], {
  ...process.env,
  SHELLWEGO_TEST_STRICT: process.env.SHELLWEGO_TEST_STRICT ?? '1',
});
