// The VM-mode command lines, and the namespace init's shell run for real (without the namespaces,
// which need root and are proven in a VM by test/e2e/vm-guest-isolation.test.ts).
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { SecretBytes } from '@shellwego/kit/secret-bytes';
import { describe, expect, it } from 'vitest';
import { INIT_NAME, INIT_SCRIPT, probeArgv, workloadArgv } from './namespace-launch.js';
import { writeEnvironment } from './workload-env.js';

const base = { busybox: '/bin/busybox', root: '/run/shellwego/root', cwdHost: '/run/shellwego/root/srv', argv: ['/app/server', '--port', '8080'] };

describe('workloadArgv', () => {
  it('unshares PID and mount namespaces, mounts the new /proc in the root, and enters the root as the user', () => {
    expect(workloadArgv({ ...base, ids: { uid: 1000, gid: 1001 } })).toEqual([
      '/bin/busybox',
      'unshare',
      '--pid',
      '--mount',
      '--fork',
      '--mount-proc=/run/shellwego/root/proc',
      '--',
      '/bin/busybox',
      'sh',
      '-c',
      INIT_SCRIPT,
      INIT_NAME,
      '/bin/busybox',
      'nsenter',
      '--root=/run/shellwego/root',
      '--wd=/run/shellwego/root/srv',
      '-G',
      '1001',
      '-S',
      '1000',
      '-F',
      '--',
      '/app/server',
      '--port',
      '8080',
    ]);
  });

  it('keeps root without a user switch, and passes argv through untouched', () => {
    const argv = workloadArgv({ ...base, ids: { uid: 0, gid: 0 }, argv: ['sh', '-c', 'echo "$HOME" -- -G 5'] });
    expect(argv).not.toContain('-S');
    expect(argv.slice(argv.indexOf('-F'))).toEqual(['-F', '--', 'sh', '-c', 'echo "$HOME" -- -G 5']);
    // A group other than 0 alone still switches.
    expect(workloadArgv({ ...base, ids: { uid: 0, gid: 50 } })).toEqual(expect.arrayContaining(['-G', '50', '-S', '0']));
  });
});

describe('probeArgv', () => {
  it("joins the init's PID and mount namespaces and opens root and working directory through its /proc root", () => {
    expect(probeArgv({ ...base, ids: { uid: 1000, gid: 1001 }, initPid: 4321, argv: ['test', '-f', '/tmp/ready'] })).toEqual([
      '/bin/busybox',
      'nsenter',
      '-t',
      '4321',
      '--pid',
      '--mount',
      '--root=/proc/4321/root/run/shellwego/root',
      '--wd=/proc/4321/root/run/shellwego/root/srv',
      '-G',
      '1001',
      '-S',
      '1000',
      '--',
      'test',
      '-f',
      '/tmp/ready',
    ]);
  });
});

/** Runs INIT_SCRIPT over argv like the namespace does, with the environment down fd 3. */
async function runInit(argv: string[], env: Record<string, string>, secrets: Map<string, SecretBytes>, signal?: NodeJS.Signals) {
  const child = spawn('/bin/busybox', ['sh', '-c', INIT_SCRIPT, INIT_NAME, ...argv], { env: {}, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
  await writeEnvironment(child.stdio[3] as Writable, env, secrets);
  if (signal !== undefined) {
    // The workload is the init's child here too; wait until it has announced itself.
    while (!stdout.includes('ready')) await new Promise((resolve) => setTimeout(resolve, 20));
    const workload = Number(/ready (\d+)/.exec(stdout)?.[1]);
    process.kill(workload, signal);
  }
  return { ...(await exit), stdout };
}

describe('the namespace init', () => {
  it("gives the workload exactly the records, secrets included, and none of the shell's own variables", async () => {
    const secret = SecretBytes.copyOf(Buffer.from("it's\na = \\secret  "));
    const { code, stdout } = await runInit(
      ['/bin/busybox', 'env'],
      { PATH: '/usr/bin:/bin', EMPTY: '', SHADOWED: 'explicit' },
      new Map([
        ['DB_PASSWORD', secret],
        ['SHADOWED', SecretBytes.copyOf(Buffer.from('from-secret'))],
      ]),
    );
    expect(code).toBe(0);
    expect(
      stdout
        .split('\n')
        .filter((line) => line !== '')
        .sort(),
    ).toEqual(["DB_PASSWORD=it's", 'a = \\secret  ', 'EMPTY=', 'PATH=/usr/bin:/bin', 'SHADOWED=explicit'].sort());
  });

  it("exits with the workload's status, 128+N when a signal killed it, and leaves SIGINT at its default", async () => {
    const env = { PATH: '/bin' };
    expect((await runInit(['/bin/busybox', 'sh', '-c', 'exit 7'], env, new Map())).code).toBe(7);
    const sleeper = ['/bin/busybox', 'sh', '-c', 'echo ready $$; exec /bin/busybox sleep 30'];
    expect(await runInit(sleeper, env, new Map(), 'SIGTERM')).toMatchObject({ code: 143, signal: null });
    expect(await runInit(sleeper, env, new Map(), 'SIGINT')).toMatchObject({ code: 130, signal: null });
    const trapping = ['/bin/busybox', 'sh', '-c', 'trap "echo got TERM; exit 42" TERM; echo ready $$; /bin/busybox sleep 30 & wait'];
    const trapped = await runInit(trapping, env, new Map(), 'SIGTERM');
    expect(trapped).toMatchObject({ code: 42 });
    expect(trapped.stdout).toContain('got TERM');
  });
});
