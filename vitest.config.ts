import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['lib/**/*.test.ts', 'services/**/*.test.ts', 'cli/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '.cache/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: suites that boot VMs or start whole platforms must not
    // compete with each other for the CPU.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
