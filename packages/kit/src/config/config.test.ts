import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { defineConfig, loadConfig, toEnvSuffix } from './define-config.js';
import { defaultPorts, shellwegoHome } from './home.js';
import type { HostPort, Setting } from './settings.js';
import { boolean, database, duration, hostPort, integer, keyValues, oneOf, optional, path, port, string, url } from './settings.js';

const dir = mkdtempSync(join(tmpdir(), 'shellwego-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function writeJson(content: unknown): string {
  const file = join(dir, `config-${fileCount++}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Loads a one-setting config named `value` from env SHELLWEGO_T_VALUE. */
function one<T>(setting: Setting<T>, raw: string | undefined, env: NodeJS.ProcessEnv = {}): T {
  const def = defineConfig('SHELLWEGO_T_', { value: setting });
  return loadConfig(def, { env: { ...env, ...(raw === undefined ? {} : { SHELLWEGO_T_VALUE: raw }) } }).value;
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) {
      return err;
    }
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('setting kinds', () => {
  const cases: Array<{ name: string; setting: Setting<unknown>; valid: Array<[string, unknown]>; invalid: string[]; expected: RegExp }> = [
    { name: 'string', setting: string(), valid: [['abc', 'abc']], invalid: [], expected: /./ },
    {
      name: 'integer',
      setting: integer({ min: 1, max: 10 }),
      valid: [
        ['1', 1],
        ['10', 10],
        [' 7 ', 7],
      ],
      invalid: ['0', '11', '1.5', 'ten', '9007199254740993'],
      expected: /expected an integer between 1 and 10/,
    },
    {
      name: 'boolean',
      setting: boolean(),
      valid: [
        ['true', true],
        ['FALSE', false],
        ['1', true],
        ['no', false],
        ['on', true],
      ],
      invalid: ['maybe', '2'],
      expected: /expected a boolean/,
    },
    {
      name: 'port',
      setting: port(),
      valid: [
        ['0', 0],
        ['7401', 7401],
        ['65535', 65535],
      ],
      invalid: ['65536', '-1', 'http'],
      expected: /expected a TCP port number between 0 and 65535/,
    },
    {
      name: 'hostPort',
      setting: hostPort(),
      valid: [
        ['0.0.0.0:7401', { host: '0.0.0.0', port: 7401 }],
        ['scheduler.internal:443', { host: 'scheduler.internal', port: 443 }],
        ['[::1]:7402', { host: '::1', port: 7402 }],
      ],
      invalid: ['7401', 'host:', ':7401', 'host:99999', '::1:7401', 'a b:1'],
      expected: /expected host:port like "0.0.0.0:7401"/,
    },
    {
      name: 'duration',
      setting: duration(),
      valid: [
        ['500ms', 500],
        ['10s', 10_000],
        ['5m', 300_000],
        ['1h', 3_600_000],
        ['1h30m', 5_400_000],
        ['1.5s', 1500],
      ],
      invalid: ['ten', '10', '10 s', '-5s', 's'],
      expected: /expected a duration like "10s" or "500ms"/,
    },
    {
      name: 'url',
      setting: url({ protocols: ['postgres', 'postgresql:'] }),
      valid: [
        ['postgres://u@db:5432/x', 'postgres://u@db:5432/x'],
        ['postgresql://db/x', 'postgresql://db/x'],
      ],
      invalid: ['http://db/x', 'db:5432', 'not a url'],
      expected: /expected a URL with scheme postgres or postgresql/,
    },
    {
      name: 'oneOf',
      setting: oneOf(['auto', 'firecracker', 'qemu', 'process']),
      valid: [['qemu', 'qemu']],
      invalid: ['QEMU', 'docker'],
      expected: /expected one of "auto", "firecracker", "qemu", "process"/,
    },
    {
      name: 'keyValues',
      setting: keyValues(),
      valid: [
        ['zone=a,disk=ssd', { zone: 'a', disk: 'ssd' }],
        ['k=a=b', { k: 'a=b' }],
        [' x = 1 ,', { x: '1' }],
      ],
      invalid: ['zone', '=a', 'a=1,a=2'],
      expected: /expected comma-separated key=value pairs/,
    },
  ];

  for (const { name, setting, valid, invalid, expected } of cases) {
    it(`${name}: parses valid values and rejects invalid ones naming the env var`, () => {
      for (const [raw, value] of valid) {
        expect(one(setting, raw)).toEqual(value);
      }
      for (const raw of invalid) {
        const err = errorOf(() => one(setting, raw));
        expect(err.message).toContain(`SHELLWEGO_T_VALUE: `);
        expect(err.message).toMatch(expected);
        expect(err.message).toContain(`got ${JSON.stringify(raw)} (from env)`);
      }
    });
  }

  it('path expands a leading ~ and $SHELLWEGO_HOME and makes relative paths absolute', () => {
    const env = { HOME: '/home/op', SHELLWEGO_HOME: '/srv/sw' };
    expect(one(path(), '~/state', env)).toBe('/home/op/state');
    expect(one(path(), '~', env)).toBe('/home/op');
    expect(one(path(), '$SHELLWEGO_HOME/db', env)).toBe('/srv/sw/db');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${VAR} form is what is under test
    expect(one(path(), '${SHELLWEGO_HOME}/db', env)).toBe('/srv/sw/db');
    expect(one(path(), '$SHELLWEGO_HOME/db', { HOME: '/home/op' })).toBe(`${shellwegoHome({ HOME: '/home/op' })}/db`);
    expect(one(path(), 'rel/x', env)).toBe(join(process.cwd(), 'rel/x'));
    // A default is expanded against the env being loaded, not the process's.
    expect(one(path({ default: '$SHELLWEGO_HOME/scheduler' }), undefined, env)).toBe('/srv/sw/scheduler');
    for (const raw of ['~other/x', '$SHELLWEGO_HOMEX/x', '$HOME/x']) {
      expect(errorOf(() => one(path(), raw, env)).message).toMatch(/SHELLWEGO_T_VALUE: expected a path/);
    }
  });

  it('database keeps postgres URLs, hides them in errors and expands a PGlite directory', () => {
    const env = { HOME: '/home/op', SHELLWEGO_HOME: '/srv/sw' };
    expect(one(database(), 'postgres://svc:pw@db:5432/x', env)).toBe('postgres://svc:pw@db:5432/x');
    expect(one(database(), 'postgresql://db/x', env)).toBe('postgresql://db/x');
    expect(one(database(), 'memory://', env)).toBe('memory://');
    expect(one(database({ default: '$SHELLWEGO_HOME/scheduler/db' }), undefined, env)).toBe('/srv/sw/scheduler/db');
    expect(one(database(), '~/db', env)).toBe('/home/op/db');
    const err = errorOf(() => one(database(), 'mysql://svc:pw-canary@db/x', env));
    expect(err.message).toBe(
      'invalid configuration (1 problem):\nSHELLWEGO_T_VALUE: expected a postgres:// URL or a directory for the embedded database (a leading ~ or $SHELLWEGO_HOME is expanded), got (value hidden) (from env)',
    );
  });

  it('keyValues defaults to no entries and optional() gives undefined when unset', () => {
    expect(one(keyValues(), undefined)).toEqual({});
    expect(one(optional(url()), undefined)).toBeUndefined();
    expect(one(optional(url()), 'https://x.example/')).toBe('https://x.example/');
    expect(errorOf(() => one(optional(url()), 'nope')).message).toMatch(/SHELLWEGO_T_VALUE: expected a URL/);
  });
});

describe('loadConfig', () => {
  const def = defineConfig('SHELLWEGO_SCHEDULER_', {
    heartbeatInterval: duration({ default: '10s' }),
    listen: hostPort({ default: `0.0.0.0:${defaultPorts.scheduler}` }),
    replicas: integer({ min: 1, default: 1 }),
    databaseUrl: url({ protocols: ['postgres', 'postgresql'], sensitive: true, description: 'Postgres URL' }),
    driver: oneOf(['auto', 'qemu'], { default: 'auto' }),
  });

  it('maps camelCase names to prefixed env vars', () => {
    expect(def.envNames.heartbeatInterval).toBe('SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL');
    expect(def.envNames.databaseUrl).toBe('SHELLWEGO_SCHEDULER_DATABASE_URL');
    expect(toEnvSuffix('caURL')).toBe('CA_URL');
    expect(toEnvSuffix('s3Bucket')).toBe('S3_BUCKET');
    expect(defineConfig('SHELLWEGO_X', { a: string() }).envNames.a).toBe('SHELLWEGO_X_A');
  });

  it('takes env over file over default', () => {
    const file = writeJson({ heartbeatInterval: '2m', replicas: 3, databaseUrl: 'postgres://file/db' });
    const config = loadConfig(def, {
      file,
      env: { SHELLWEGO_SCHEDULER_REPLICAS: '5', SHELLWEGO_SCHEDULER_LISTEN: '' },
    });
    expect(config).toEqual({
      heartbeatInterval: 120_000, // file over default
      listen: { host: '0.0.0.0', port: 7401 }, // default (an empty env var counts as unset)
      replicas: 5, // env over file
      databaseUrl: 'postgres://file/db',
      driver: 'auto',
    });
  });

  it('finds the file through SHELLWEGO_CONFIG, and an explicit file wins over it', () => {
    const viaEnv = writeJson({ databaseUrl: 'postgres://env-file/db' });
    const explicit = writeJson({ databaseUrl: 'postgres://explicit/db' });
    expect(loadConfig(def, { env: { SHELLWEGO_CONFIG: viaEnv } }).databaseUrl).toBe('postgres://env-file/db');
    expect(loadConfig(def, { file: explicit, env: { SHELLWEGO_CONFIG: viaEnv } }).databaseUrl).toBe('postgres://explicit/db');
  });

  it('rejects unknown keys in the file, naming them', () => {
    const file = writeJson({ databaseUrl: 'postgres://x/db', heartbeatIntervl: '5s' });
    const err = errorOf(() => loadConfig(def, { file, env: {} }));
    expect(err.issues).toHaveLength(1);
    expect(err.message).toContain(`config file ${file}: unknown key "heartbeatIntervl"`);
  });

  it('lists every problem at once, says where each came from and hides sensitive values', () => {
    const file = writeJson({ replicas: 0, extra: true });
    const err = errorOf(() =>
      loadConfig(def, {
        file,
        env: { SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL: 'ten', SHELLWEGO_SCHEDULER_DRIVER: 'docker' },
      }),
    );
    const lines = err.message.split('\n');
    expect(lines[0]).toBe('invalid configuration (5 problems):');
    expect(lines).toContain('SHELLWEGO_SCHEDULER_HEARTBEAT_INTERVAL: expected a duration like "10s" or "500ms", got "ten" (from env)');
    expect(lines).toContain(`SHELLWEGO_SCHEDULER_REPLICAS: expected an integer of at least 1, got 0 (from config file ${file} key "replicas")`);
    expect(lines).toContain('SHELLWEGO_SCHEDULER_DRIVER: expected one of "auto", "qemu", got "docker" (from env)');
    expect(lines).toContain(
      'SHELLWEGO_SCHEDULER_DATABASE_URL: required but not set; set env SHELLWEGO_SCHEDULER_DATABASE_URL or key "databaseUrl" in the config file (Postgres URL)',
    );
    expect(lines.some((line) => line.includes('unknown key "extra"'))).toBe(true);
    expect(err.issues.map((i) => i.source).sort()).toEqual(['env', 'env', 'file', 'file', 'missing']);

    const secretUrl = 'mysql://admin:hunter2-canary@db/x';
    const hidden = errorOf(() => loadConfig(def, { env: { SHELLWEGO_SCHEDULER_DATABASE_URL: secretUrl } }));
    expect(hidden.message).toContain('SHELLWEGO_SCHEDULER_DATABASE_URL: expected a URL with scheme postgres or postgresql, got (value hidden) (from env)');
    expect(hidden.message).not.toContain('hunter2-canary');
  });

  it('reports a missing or malformed file without quoting its content', () => {
    const missing = join(dir, 'absent.json');
    expect(errorOf(() => loadConfig(def, { file: missing, env: {} })).message).toContain(`config file ${missing}: cannot be read (ENOENT)`);
    const broken = writeJson('{\n  "databaseUrl": "postgres://u:hunter2-canary@x/db",\n  oops\n}');
    const err = errorOf(() => loadConfig(def, { file: broken, env: {} }));
    expect(err.message).toMatch(/is not valid JSON \(line 3, column 3\)/);
    expect(err.message).not.toContain('hunter2-canary');
    expect(errorOf(() => loadConfig(def, { file: writeJson([1]), env: {} })).message).toContain('must hold a JSON object');
  });

  it('returns a frozen object typed from the definition', () => {
    const config = loadConfig(def, { env: { SHELLWEGO_SCHEDULER_DATABASE_URL: 'postgres://x/db' } });
    expect(Object.isFrozen(config)).toBe(true);
    expectTypeOf(config.heartbeatInterval).toEqualTypeOf<number>();
    expectTypeOf(config.listen).toEqualTypeOf<HostPort>();
    expectTypeOf(config.driver).toEqualTypeOf<'auto' | 'qemu'>();
    expectTypeOf(loadConfig(defineConfig('X_', { o: optional(port()) })).o).toEqualTypeOf<number | undefined>();
  });

  it('rejects file values of the wrong JSON type', () => {
    const strings = defineConfig('SHELLWEGO_T_', { name: string(), labels: keyValues() });
    const file = writeJson({ name: 42, labels: { zone: 1 } });
    const err = errorOf(() => loadConfig(strings, { file, env: {} }));
    expect(err.message).toContain(`SHELLWEGO_T_NAME: expected a string, got 42 (from config file ${file} key "name")`);
    expect(err.message).toContain(`SHELLWEGO_T_LABELS: expected comma-separated key=value pairs`);
    expect(loadConfig(strings, { file: writeJson({ name: 'n', labels: { zone: 'a' } }), env: {} }).labels).toEqual({ zone: 'a' });
  });
});

describe('shellwegoHome', () => {
  it('uses $SHELLWEGO_HOME, else ~/.shellwego, and for root /var/lib/shellwego', () => {
    expect(shellwegoHome({ HOME: '/home/op' }, 1000)).toBe('/home/op/.shellwego');
    expect(shellwegoHome({ HOME: '/root' }, 0)).toBe('/var/lib/shellwego');
    expect(shellwegoHome({ HOME: '/root', SHELLWEGO_HOME: '~/sw' }, 0)).toBe('/root/sw');
    expect(shellwegoHome({ HOME: '/home/op', SHELLWEGO_HOME: '/var/lib/shellwego' })).toBe('/var/lib/shellwego');
    expect(shellwegoHome({ HOME: '/home/op', SHELLWEGO_HOME: '~/sw' })).toBe('/home/op/sw');
  });
});
