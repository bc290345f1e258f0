import { defineConfig } from 'vitest/config';
// By path, not by package name: the config is bundled, and only relative imports go into the bundle.
import { StrictSkipsReporter } from './packages/testing/src/strict-reporter.js';

// Suites that boot VMs, start several processes or measure time (the cross-service suites in
// test/ and each service's own in services/<name>/test/): on two cores they must not compete
// with each other (or with the unit tests) for the CPU, so they run one file at a time after the
// unit tests.
const serialSuites = ['test/**/*.test.ts', 'services/*/test/**/*.test.ts'];

export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', '**/dist/**', '.cache/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', new StrictSkipsReporter()],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'services/**/*.test.ts', 'cli/src/**/*.test.ts', 'scripts/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...serialSuites],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'system',
          include: serialSuites,
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
