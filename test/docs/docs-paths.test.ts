// The design document and the READMEs cite repository paths, and files move. Every path they
// cite (in code spans, code blocks and relative links) must exist, so a move that forgets the
// docs fails here, naming the document and the path.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { repoRoot } from '@shellwego/testing/repo';
import { describe, expect, it } from 'vitest';

const readmes = readdirSync(join(repoRoot, 'services'))
  .map((service) => `services/${service}/README.md`)
  .filter((path) => existsSync(join(repoRoot, path)));
const documents = ['docs/architecture.md', 'README.md', ...readmes, 'deploy/guest-image/README.md'];

// A word in code is a repository path when it starts with a top-level folder of the checkout
// (or one that used to be: proto/, gen/, lib/), or a service-relative src/ or bench/.
const PATH_START = /^(packages|services|cli|test|scripts|deploy|docs|proto|gen|lib|src|bench)\//;
const ROOT_FILES = new Set(['.dependency-cruiser.cjs', 'vitest.config.ts', 'biome.json', 'tsconfig.json']);
// Build outputs (gitignored) exist only after a build.
const BUILD_OUTPUT = /(^|\/)dist\//;

/** The repository paths a Markdown text cites. */
function citedPaths(markdown: string): string[] {
  const found = new Set<string>();
  const code = markdown.match(/```[\s\S]*?```|`[^`\n]+`/g) ?? [];
  for (const span of code) {
    const text = span.startsWith('```') ? span.replace(/^```[^\n]*\n?/, '').replace(/```$/, '') : span.slice(1, -1);
    for (const raw of text.split(/[\s"'()|;=]+/)) {
      const word = raw.replace(/[.,:]+$/, '');
      if ((PATH_START.test(word) || ROOT_FILES.has(word)) && !BUILD_OUTPUT.test(word)) found.add(word);
    }
  }
  const prose = markdown.replace(/```[\s\S]*?```|`[^`\n]+`/g, '');
  for (const [, target] of prose.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
    if (target !== undefined && !/^[a-z]+:/i.test(target)) found.add(target);
  }
  return [...found];
}

/** One path segment with placeholders (`<name>`), `*` and `{a,b}` as a pattern, or undefined when literal. */
function segmentPattern(segment: string): RegExp | undefined {
  if (!/[<*{]/.test(segment)) return undefined;
  const source = segment
    .split(/(<[^>]*>|\*|\{[^}]*\})/)
    .map((part) => {
      if (part.startsWith('<') || part === '*') return '[^/]*';
      if (part.startsWith('{')) return `(?:${part.slice(1, -1).split(',').map(escapeRegExp).join('|')})`;
      return escapeRegExp(part);
    })
    .join('');
  return new RegExp(`^${source}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether `path` (possibly a pattern) names at least one file or folder under `base`. */
function existsUnder(base: string, path: string): boolean {
  let candidates = [base];
  for (const segment of path.split('/').filter((s) => s !== '' && s !== '.')) {
    const pattern = segmentPattern(segment);
    candidates = candidates.flatMap((dir) => {
      if (pattern === undefined) return existsSync(join(dir, segment)) ? [join(dir, segment)] : [];
      let entries: string[] = [];
      try {
        entries = readdirSync(dir);
      } catch {
        return [];
      }
      return entries.filter((entry) => pattern.test(entry)).map((entry) => join(dir, entry));
    });
    if (candidates.length === 0) return false;
  }
  return true;
}

/** A cited path exists relative to its document or to the repository root; links leaving the checkout are not ours to check. */
function missing(document: string, path: string): boolean {
  const docDir = dirname(join(repoRoot, document));
  if (relative(repoRoot, join(docDir, path)).startsWith('..')) return false;
  return !existsUnder(docDir, path) && !existsUnder(repoRoot, path);
}

describe('paths cited by the docs exist', () => {
  it('finds the paths a document cites, and checks patterns against the tree', () => {
    const sample = 'See `packages/kit/src/auth/` and ```sh\nnode services/<name>/src/main.ts --x\n``` and [a](deploy/setup-host.sh), `$HOME/x`, `lib/gone.ts`.';
    expect(citedPaths(sample).sort()).toEqual(['deploy/setup-host.sh', 'lib/gone.ts', 'packages/kit/src/auth/', 'services/<name>/src/main.ts']);
    expect(missing('README.md', 'services/<name>/src/main.ts')).toBe(false);
    expect(missing('README.md', 'packages/contracts/proto/shellwego/*/v1/*.{proto,txt}')).toBe(false);
    expect(missing('README.md', 'lib/gone.ts')).toBe(true);
    expect(citedPaths(readFileSync(join(repoRoot, 'docs/architecture.md'), 'utf8')).length).toBeGreaterThan(50);
  });

  for (const document of documents) {
    it(document, () => {
      const text = readFileSync(join(repoRoot, document), 'utf8');
      const stale = citedPaths(text).filter((path) => missing(document, path));
      expect(stale, `${document} cites paths that do not exist; update the document with the code`).toEqual([]);
    });
  }
});
