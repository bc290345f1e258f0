// `shellwego secret ...` against the real secrets process.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TestPlatform } from '@shellwego/testing/platform';
import type { SecretsClients } from '@shellwego/testing/secrets-clients';
import { secretsClients } from '@shellwego/testing/secrets-clients';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cliEntry = fileURLToPath(new URL('../../cli/bin/shellwego.js', import.meta.url));

let platform: TestPlatform;
let clients: SecretsClients;
let env: Record<string, string>;

beforeAll(async () => {
  platform = await TestPlatform.start({ services: ['secrets'] });
  clients = await secretsClients(platform);
  env = {
    SHELLWEGO_HOME: platform.home,
    SHELLWEGO_SECRETS_URL: platform.url('secrets'),
    SHELLWEGO_CA: platform.pki.caCert,
    SHELLWEGO_CERT: platform.pki.admin.cert,
    SHELLWEGO_KEY: platform.pki.admin.key,
  };
});

afterAll(() => platform?.stop());

function cli(args: string[], input?: Buffer) {
  return execa(process.execPath, [cliEntry, ...args], { env, input: input ?? Buffer.alloc(0), reject: false, timeout: 30_000 });
}

async function resolved(app: string, name: string): Promise<Buffer> {
  const res = await clients.node.resolveSecrets({ grant: clients.grant({ app, secretNames: [name] }) });
  return Buffer.from(res.secrets[0]?.value ?? []);
}

describe('shellwego secret', () => {
  it('sets a value from stdin byte for byte, newline and binary included', async () => {
    const value = Buffer.from([0x70, 0x77, 0x00, 0xff, 0x0a]);
    const set = await cli(['secret', 'set', 'DB_PASSWORD', '--app', 'shop', '-o', 'json'], value);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ name: 'DB_PASSWORD', latestVersion: 1, scope: { kind: 'SECRET_SCOPE_KIND_APP', app: 'shop' } });
    expect(set.stderr).toMatch(/ends with a newline, which is stored as part of it/);
    expect((await resolved('shop', 'DB_PASSWORD')).equals(value)).toBe(true);
  });

  it('accepts --value with a warning about argv, and lists, shows versions, deletes', async () => {
    const set = await cli(['secret', 'set', 'API_KEY', '--value', 'from-argv']);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(set.stderr).toMatch(/warning: a value given with --value is visible in your shell history and to other users in \/proc/);
    expect(set.stdout).toMatch(/^API_KEY \(workspace\): version 1 stored, 1 kept, digest [0-9a-f]{16}$/m);
    expect((await resolved('shop', 'API_KEY')).toString()).toBe('from-argv');
    await cli(['secret', 'set', 'API_KEY'], Buffer.from('second'));

    // Aegis's form, `secret set KEY VALUE`, with the same warning; the value once only.
    const positional = await cli(['secret', 'set', 'AEGIS_KEY', 'from-positional']);
    expect(positional.exitCode, positional.stderr).toBe(0);
    expect(positional.stderr).toMatch(/warning: a value given as an argument is visible in your shell history and to other users in \/proc/);
    expect((await resolved('shop', 'AEGIS_KEY')).toString()).toBe('from-positional');
    const twice = await cli(['secret', 'set', 'AEGIS_KEY', 'one', '--value', 'two']);
    expect(twice.exitCode).toBe(1);
    expect(twice.stderr).toMatch(/give the value once/);
    await cli(['secret', 'delete', 'AEGIS_KEY']);

    const list = await cli(['secret', 'list', '-o', 'json']);
    const listed = JSON.parse(list.stdout) as Array<{ name: string; latestVersion: number }>;
    expect(listed.map((s) => [s.name, s.latestVersion])).toEqual([
      ['API_KEY', 2],
      ['DB_PASSWORD', 1],
    ]);
    expect(list.stdout).not.toContain('from-argv');
    const table = await cli(['secret', 'list', '--app', 'shop']);
    expect(table.stdout.split('\n')[0]).toMatch(/^SCOPE\s+NAME\s+VERSION\s+KEPT\s+UPDATED\s+BY\s+DIGEST$/);
    expect(table.stdout).toMatch(/app shop\s+DB_PASSWORD\s+1\s+1\s/);
    expect(table.stdout).not.toContain('API_KEY');

    const versions = await cli(['secret', 'versions', 'API_KEY', '-o', 'json']);
    expect((JSON.parse(versions.stdout) as Array<{ version: number }>).map((v) => v.version)).toEqual([2, 1]);

    const deleted = await cli(['secret', 'delete', 'API_KEY']);
    expect(deleted.stdout).toBe('deleted API_KEY (workspace): 2 version(s)');
    const again = await cli(['secret', 'delete', 'API_KEY']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/^shellwego: not found: secret API_KEY does not exist in workspace/);
  });

  it('rotates the master key, waits for the re-wrap and shows the status', async () => {
    const rotated = await cli(['secret', 'rotate-key', '--wait', '-o', 'json']);
    expect(rotated.exitCode, rotated.stderr).toBe(0);
    const out = JSON.parse(rotated.stdout) as { kekId: string; status: { currentKekId: string; rewrapRunning?: boolean; versions: Array<{ kekId: string }> } };
    expect(out.kekId).toMatch(/^k2-[0-9a-f]{8}$/);
    expect(out.status.currentKekId).toBe(out.kekId);
    expect(out.status.rewrapRunning ?? false).toBe(false);
    expect(out.status.versions.map((v) => v.kekId)).toEqual([out.kekId]);
    const status = await cli(['secret', 'key-status']);
    expect(status.stdout).toMatch(new RegExp(`^current master key: ${out.kekId}$`, 'm'));
    expect(status.stdout).toMatch(/re-wrap idle \(last: (\d+) of \1 data keys moved\)/);
  });

  it('prints the audit log with filters, and follows it', async () => {
    const audit = await cli(['secret', 'audit', '--action', 'set', '-o', 'json']);
    const events = JSON.parse(audit.stdout) as Array<{ action: string; principal: string; secrets: Array<{ name: string }> }>;
    expect(events.map((e) => e.secrets[0]?.name)).toEqual(['DB_PASSWORD', 'API_KEY', 'API_KEY', 'AEGIS_KEY']);
    expect(events.every((e) => e.action === 'AUDIT_ACTION_SET' && e.principal === 'spiffe://shellwego/user/admin')).toBe(true);
    expect((await cli(['secret', 'audit', '--action', 'bogus'])).stderr).toMatch(/--action must be one of set, delete, resolve, rotate/);

    const follow = spawn(process.execPath, [cliEntry, 'secret', 'audit', '--follow', '--outcome', 'denied'], { env: { ...process.env, ...env } });
    try {
      let out = '';
      const seen = new Promise<void>((resolve) => {
        follow.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('wrong-node')) resolve();
        });
      });
      await clients.node
        .resolveSecrets({ grant: clients.grant({ app: 'shop', secretNames: ['DB_PASSWORD'], nodeId: 'other', instanceId: 'i-followed' }) })
        .catch(() => undefined);
      await seen;
      expect(out).toMatch(/^\d+ {2}\S+ {2}resolve {2}denied {2}spiffe:\/\/shellwego\/node\/local {2}app shop {2}DB_PASSWORD {2}i-followed {2}wrong-node: /m);
    } finally {
      follow.kill('SIGTERM');
    }
  });
});

const scriptSkip = spawnSync('script', ['--version']).status === 0 ? undefined : 'util-linux `script` (to give the CLI a terminal) is not installed';

describe.skipIf(scriptSkip !== undefined)('shellwego secret set on a terminal', () => {
  it('prompts without echo, even for keys typed the moment the prompt shows, and stores what was typed without the Enter', async () => {
    // `script` runs the CLI on a pseudo-terminal and forwards what we write as keystrokes. Keys
    // go in as soon as the first byte of output arrives (echo must already be off then: the CLI
    // turns it off before writing the prompt), then in pieces after the prompt is complete.
    const command = `${process.execPath} ${cliEntry} secret set PROMPTED --app shop`;
    const terminal = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let typedFirst = false;
    const prompted = new Promise<void>((resolve) => {
      terminal.stdout.on('data', (chunk: Buffer) => {
        if (!typedFirst) {
          typedFirst = true;
          terminal.stdin.write('typed-');
        }
        screen += chunk.toString();
        if (screen.includes('Enter to finish): ')) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => terminal.once('exit', resolve));
    await prompted;
    terminal.stdin.write('sec');
    await sleep(50);
    terminal.stdin.write('rex\x7ft\r');
    expect(await exited).toBe(0);
    expect(screen).toMatch(/PROMPTED \(app shop\): version 1 stored/);
    for (const piece of ['typed', 'sec', 'rex']) expect(screen).not.toContain(piece);
    expect((await resolved('shop', 'PROMPTED')).toString()).toBe('typed-secret');
  });

  it('turns echo off before the prompt is written (traced system calls)', async () => {
    // Timing alone cannot show the order reliably; the system calls can. The first terminal
    // settings without ECHO must come before the write of the prompt.
    const dir = await mkdtemp(join(tmpdir(), 'prompt-trace-'));
    const trace = join(dir, 'strace.txt');
    try {
      const command = `${process.execPath} ${cliEntry} secret set TRACED --app shop`;
      const traced = spawn('strace', ['-f', '-qq', '-e', 'trace=ioctl,write', '-o', trace, 'script', '-qec', command, '/dev/null'], {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      const prompted = new Promise<void>((resolve) => {
        traced.stdout.on('data', (chunk: Buffer) => {
          screen += chunk.toString();
          if (screen.includes('Enter to finish): ')) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => traced.once('exit', resolve));
      await prompted;
      traced.stdin.write('traced-value\r');
      expect(await exited).toBe(0);
      const lines = (await readFile(trace, 'utf8')).split('\n');
      const promptWrite = lines.findIndex((line) => /\bwrite\(\d+, "value for TRACED/.test(line));
      const echoOff = lines.findIndex((line) => {
        const lflag = /\bTCSETSW?F?, \{.*c_lflag=([A-Z0-9|]*)/.exec(line)?.[1];
        return lflag !== undefined && !lflag.split('|').includes('ECHO');
      });
      expect(promptWrite).toBeGreaterThan(0);
      expect(echoOff).toBeGreaterThanOrEqual(0);
      expect(echoOff).toBeLessThan(promptWrite);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
