// Prints every skipped test with its reason and one summary line with the counts. Under
// SHELLWEGO_TEST_STRICT=1 (what `npm test` and CI run) a single skip fails the run: what a test
// needs, the project's setup installs, so a skip means the machine or the setup is broken.
import type { Reporter, TestCase, TestModule } from 'vitest/node';

export const strictTests = (): boolean => process.env.SHELLWEGO_TEST_STRICT === '1';

export class StrictSkipsReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const tests: TestCase[] = modules.flatMap((module) => [...module.children.allTests()]);
    const count = (state: string) => tests.filter((test) => test.result().state === state).length;
    const skipped = tests.filter((test) => test.result().state === 'skipped');
    const strict = strictTests();
    for (const test of skipped) {
      const result = test.result();
      const note = result.state === 'skipped' && result.note !== undefined ? ` (${result.note})` : '';
      process.stdout.write(`${strict ? 'STRICT: skipped test fails the run' : 'skipped'}: ${test.module.moduleId} > ${test.fullName}${note}\n`);
    }
    process.stdout.write(
      `shellwego test run${strict ? ' (strict)' : ''}: ${tests.length} tests in ${modules.length} files, ${count('passed')} passed, ${count('failed')} failed, ${skipped.length} skipped\n`,
    );
    if (strict && skipped.length > 0) process.exitCode = 1;
  }
}
