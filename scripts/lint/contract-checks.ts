import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const buf = fileURLToPath(new URL('../../node_modules/.bin/buf', import.meta.url));

export interface CheckResult {
  readonly ok: boolean;
  readonly output: string;
}

function run(command: string, args: readonly string[], cwd: string): CheckResult {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() };
}

/** buf lint (STANDARD, from buf.yaml) and buf format on the module in `cwd`. */
export function lintContracts(cwd: string): CheckResult {
  const lint = run(buf, ['lint'], cwd);
  if (!lint.ok) return lint;
  const format = run(buf, ['format', '--diff', '--exit-code'], cwd);
  return format.ok ? { ok: true, output: 'buf lint and buf format: clean' } : { ok: false, output: `buf format would change:\n${format.output}` };
}

/** The newest `v*` tag by version order, or undefined before the first release. */
export function newestReleaseTag(cwd: string): string | undefined {
  const tags = execFileSync('git', ['tag', '--list', 'v*', '--sort=-v:refname'], { cwd, encoding: 'utf8' })
    .split('\n')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  return tags[0];
}

/**
 * buf breaking (FILE rules, from buf.yaml) of the working tree against the
 * newest release tag. Before the first release there is nothing to compare,
 * so the contracts may still change freely.
 */
export function breakingAgainstRelease(cwd: string): CheckResult {
  const tag = newestReleaseTag(cwd);
  if (!tag) {
    return { ok: true, output: 'buf breaking: no release tag (v*) yet, nothing to compare against; contracts may change freely until the first release' };
  }
  const result = run(buf, ['breaking', '--against', `.git#tag=${tag}`], cwd);
  return result.ok
    ? { ok: true, output: `buf breaking: no breaking change since ${tag}` }
    : { ok: false, output: `buf breaking: changes break ${tag}:\n${result.output}` };
}
