// The contract checks `npm run lint` runs and the contract tests repeat: buf lint and format, and
// buf breaking against the newest release tag.
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');

/** This package's directory: the buf module (buf.yaml, proto/, gen/). */
export const contractsDir = join(import.meta.dirname, '..');

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
function newestReleaseTag(cwd: string): string | undefined {
  const tags = execFileSync('git', ['tag', '--list', 'v*', '--sort=-v:refname'], { cwd, encoding: 'utf8' })
    .split('\n')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  return tags[0];
}

/**
 * buf breaking (FILE rules, from buf.yaml) of the module in `moduleDir` against the same module
 * at the newest release tag of its git repository. Before the first release there is nothing to
 * compare, so the contracts may still change freely.
 */
export function breakingAgainstRelease(moduleDir: string): CheckResult {
  const gitRoot = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: moduleDir, encoding: 'utf8' }).trim();
  const tag = newestReleaseTag(gitRoot);
  if (!tag) {
    return { ok: true, output: 'buf breaking: no release tag (v*) yet, nothing to compare against; contracts may change freely until the first release' };
  }
  const subdir = relative(gitRoot, moduleDir);
  const against = `${join(gitRoot, '.git')}#tag=${tag}${subdir === '' ? '' : `,subdir=${subdir}`}`;
  const result = run(buf, ['breaking', '--against', against], moduleDir);
  return result.ok
    ? { ok: true, output: `buf breaking: no breaking change since ${tag}` }
    : { ok: false, output: `buf breaking: changes break ${tag}:\n${result.output}` };
}
