import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { breakingAgainstRelease, contractsDir, lintContracts } from '@shellwego/contracts/checks';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const buf = require.resolve('@bufbuild/buf/bin/buf');
const protocGenEs = require.resolve('@bufbuild/protoc-gen-es/bin/protoc-gen-es');

/**
 * A git repository holding a copy of the contracts where the project keeps them, to edit without
 * touching the checkout.
 */
async function contractRepo(): Promise<{ repo: string; module: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sw-contracts-'));
  const module = join(dir, 'packages/contracts');
  await cp(join(contractsDir, 'proto'), join(module, 'proto'), { recursive: true });
  await cp(join(contractsDir, 'buf.yaml'), join(module, 'buf.yaml'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
  git('init', '-q');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-qm', 'contracts');
  return { repo: dir, module };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('contracts', () => {
  it('pass buf lint (STANDARD) and buf format', () => {
    const result = lintContracts(contractsDir);
    expect(result.output).toBe('buf lint and buf format: clean');
    expect(result.ok).toBe(true);
  });

  it('before the first release, the breaking check says there is nothing to compare', async () => {
    const { repo, module } = await contractRepo();
    try {
      const result = breakingAgainstRelease(module);
      expect(result.ok).toBe(true);
      expect(result.output).toMatch(/no release tag \(v\*\) yet/);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

  it('after a release, a renumbered field fails the breaking check and an additive change passes', async () => {
    const { repo, module } = await contractRepo();
    try {
      execFileSync('git', ['tag', 'v0.1.0'], { cwd: repo });
      const file = join(module, 'proto/shellwego/secrets/v1/secrets.proto');
      const original = await readFile(file, 'utf8');

      const additive = original.replace('message DeleteSecretResponse {', 'message DeleteSecretResponse {\n  // Added later.\n  string note = 2;');
      await writeFile(file, additive);
      expect(breakingAgainstRelease(module)).toEqual({ ok: true, output: 'buf breaking: no breaking change since v0.1.0' });

      const renumbered = original.replace('  bytes value = 3;\n}\n\n// SetSecret output.', '  bytes value = 4;\n}\n\n// SetSecret output.');
      expect(renumbered).not.toBe(original);
      await writeFile(file, renumbered);
      const result = breakingAgainstRelease(module);
      expect(result.ok).toBe(false);
      expect(result.output).toMatch(/changes break v0\.1\.0/);
      expect(result.output).toMatch(/SetSecretRequest/);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

  it('gen/ is what buf generate makes from proto/ (regenerate with `npm run gen`)', async () => {
    const out = await mkdtemp(join(tmpdir(), 'sw-gen-'));
    try {
      const template = JSON.stringify({
        version: 'v2',
        plugins: [{ local: protocGenEs, out, opt: ['target=ts', 'import_extension=js'] }],
      });
      execFileSync(buf, ['generate', 'proto', '--template', template], { cwd: contractsDir, stdio: 'pipe' });
      const fresh = await listFiles(out);
      expect(await listFiles(join(contractsDir, 'gen'))).toEqual(fresh);
      for (const file of fresh) {
        const committed = await readFile(join(contractsDir, 'gen', file), 'utf8');
        expect(committed, `gen/${file} is stale: run npm run gen`).toBe(await readFile(join(out, file), 'utf8'));
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
