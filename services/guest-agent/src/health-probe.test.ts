import { create } from '@bufbuild/protobuf';
import { HealthCheckSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { describe, expect, it } from 'vitest';
import { type ExecOutcome, runProbe } from './health-probe.js';

const execCheck = (argv: string[]) => create(HealthCheckSchema, { probe: { case: 'exec', value: { argv } } });
const outcome = (o: Partial<ExecOutcome>) => async (): Promise<ExecOutcome> => ({ exitCode: null, signal: null, timedOut: false, ...o });

describe('exec probe results a person can act on', () => {
  it('names the command that could not start, and why', async () => {
    expect(await runProbe(execCheck(['/bin/true']), outcome({ error: 'ENOENT' }))).toEqual({
      healthy: false,
      detail: 'exec probe could not start: /bin/true: not found',
    });
    expect((await runProbe(execCheck(['/srv/check']), outcome({ error: 'EACCES' }))).detail).toBe('exec probe could not start: /srv/check: permission denied');
    expect((await runProbe(execCheck(['/srv/check']), outcome({ error: "the workload's namespace is gone" }))).detail).toBe(
      "exec probe could not start: /srv/check: the workload's namespace is gone",
    );
  });

  it('reads the shell exit codes for a command that is missing or not executable', async () => {
    expect((await runProbe(execCheck(['/bin/nope']), outcome({ exitCode: 127 }))).detail).toBe('exec probe exited 127: /bin/nope: not found');
    expect((await runProbe(execCheck(['/etc/passwd']), outcome({ exitCode: 126 }))).detail).toBe('exec probe exited 126: /etc/passwd: not executable');
    expect((await runProbe(execCheck(['/bin/check']), outcome({ exitCode: 3 }))).detail).toBe('exec probe exited 3');
    expect((await runProbe(execCheck(['/bin/check']), outcome({ exitCode: 0 }))).healthy).toBe(true);
  });
});
