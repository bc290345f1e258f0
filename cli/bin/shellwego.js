#!/usr/bin/env node
// Runs the CLI's prebuilt bundle (cli/dist, made by cli/build.ts; `npm ci` builds it). When it is
// missing or a source changed since it was built, it is rebuilt first (about a second, once);
// should that fail, the TypeScript runs through tsx instead, slower, with a note on stderr.
import { pathToFileURL } from 'node:url';
import { bundleEntry, bundleIsFresh } from '../bundle-manifest.js';

if (bundleIsFresh() || (await rebuilt())) {
  await import(pathToFileURL(bundleEntry).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}

async function rebuilt() {
  try {
    const { tsImport } = await import('tsx/esm/api');
    const { buildCli } = await tsImport('../build.ts', import.meta.url);
    await buildCli();
    return true;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    process.stderr.write(`shellwego: note: cannot build the CLI bundle (${reason}); running the TypeScript through tsx, which starts slower\n`);
    return false;
  }
}
