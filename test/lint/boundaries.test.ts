// `npm run lint` keeps the package walls: in a copy of the checkout, one forbidden import at a
// time must fail the boundaries check with the rule's name, and the clean copy must pass.
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from '@shellwego/testing/repo';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let copy: string;

/**
 * The tracked files, and a node_modules whose workspace links point into the copy (so imports by
 * package name resolve to the copy's files) while every npm package is the checkout's own.
 */
async function copyCheckout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sw-lint-'));
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await cp(join(repoRoot, file), join(dir, file));
  }
  const modules = join(dir, 'node_modules');
  await mkdir(join(modules, '@shellwego'), { recursive: true });
  for (const entry of await readdir(join(repoRoot, 'node_modules'))) {
    if (entry !== '@shellwego') await symlink(join(repoRoot, 'node_modules', entry), join(modules, entry));
  }
  for (const link of await readdir(join(repoRoot, 'node_modules/@shellwego'))) {
    const target = execFileSync('readlink', [join(repoRoot, 'node_modules/@shellwego', link)], { encoding: 'utf8' }).trim();
    await symlink(target, join(modules, '@shellwego', link));
  }
  return dir;
}

async function boundaries(): Promise<{ exitCode: number | undefined; output: string }> {
  const result = await execa(process.execPath, ['--import', 'tsx', 'scripts/lint.ts', 'boundaries'], { cwd: copy, reject: false, all: true });
  return { exitCode: result.exitCode, output: result.all ?? '' };
}

/** Adds `source` at `file` in the copy, runs the check, and takes the file away again. */
async function withFile(file: string, source: string): Promise<{ exitCode: number | undefined; output: string }> {
  await writeFile(join(copy, file), source);
  try {
    return await boundaries();
  } finally {
    await rm(join(copy, file));
  }
}

beforeAll(async () => {
  copy = await copyCheckout();
}, 120_000);

afterAll(async () => {
  if (copy !== undefined) await rm(copy, { recursive: true, force: true });
});

describe('npm run lint: package boundaries', () => {
  it('passes on the checkout as it is', async () => {
    const clean = await boundaries();
    expect(clean.output).toContain('boundaries: every import respects the package boundaries');
    expect(clean.exitCode).toBe(0);
  });

  it("fails on a service that imports another service's module", async () => {
    const result = await withFile('services/secrets/src/peek.ts', "import '@shellwego/scheduler/main';\n");
    expect(result.exitCode).toBe(1);
    expect(result.output).toMatch(/no-service-imports-another-service: services\/secrets\/src\/peek\.ts → services\/scheduler\/src\/main\.ts/);
  });

  it('fails on a relative import that crosses a package boundary', async () => {
    const result = await withFile('services/registry/src/reach.ts', "export { createLogger } from '../../../packages/kit/src/log/index.js';\n");
    expect(result.exitCode).toBe(1);
    expect(result.output).toMatch(/no-relative-import-across-packages: services\/registry\/src\/reach\.ts → packages\/kit\/src\/log\/index\.ts/);
  });

  it('fails on a production module that imports the testing package', async () => {
    const result = await withFile('services/secrets/src/shortcut.ts', "export { capturingLogger } from '@shellwego/testing/logger';\n");
    expect(result.exitCode).toBe(1);
    expect(result.output).toMatch(/testing-only-in-tests: services\/secrets\/src\/shortcut\.ts → packages\/testing\/src\/logger\.ts/);
  });
});
