// Where the CLI bundle lives and whether it is current. Plain JavaScript so that the launcher
// (bin/shellwego.js) can ask before anything TypeScript is loaded; build.ts writes the manifest.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliDir = dirname(fileURLToPath(import.meta.url));

export const bundleDir = join(cliDir, 'dist');
export const bundleEntry = join(bundleDir, 'main.js');
export const manifestFile = join(bundleDir, 'manifest.json');

/**
 * The manifest's text: when the build started and the files it read, relative to cli/. Edits
 * made while it ran are later than its start, so they count as changes.
 */
export function manifestText(startedAtMs, inputs) {
  return `${JSON.stringify({ startedAtMs, inputs: inputs.map((input) => relative(cliDir, input)) }, null, 2)}\n`;
}

/** True when the bundle exists and no input listed in its manifest changed since its build began. */
export function bundleIsFresh() {
  try {
    const { startedAtMs, inputs } = JSON.parse(readFileSync(manifestFile, 'utf8'));
    statSync(bundleEntry);
    return inputs.every((input) => statSync(resolve(cliDir, input)).mtimeMs <= startedAtMs);
  } catch {
    // No manifest or bundle yet, or an input is gone: not fresh.
    return false;
  }
}
