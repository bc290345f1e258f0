// The shellwego CLI against a real scheduler: node tokens and the node list,
// app deploy/ls/get/scale/rollback/rm, instance ls, events (also --follow),
// text and --output json, and errors that say what is wrong.
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { HEARTBEAT_INTERVAL_MS, SchedulerHarness } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'cli/bin/shellwego.js');
const run = promisify(execFile);
// Every CLI call is a fresh Node process compiling TypeScript: seconds each on a busy machine.
const CLI_TEST_MS = 90_000;

let harness: SchedulerHarness;
let nextHost = 2;
beforeAll(async () => {
  harness = await SchedulerHarness.start();
  harness.registry.add('shop:1.0');
});
afterAll(async () => {
  await harness?.stop();
});

function env(): NodeJS.ProcessEnv {
  return { ...process.env, SHELLWEGO_HOME: harness.home, SHELLWEGO_SCHEDULER_URL: harness.url };
}

async function shellwego(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [cli, ...args], { cwd: root, env: env() });
  return stdout;
}

async function json<T>(...args: string[]): Promise<T> {
  return JSON.parse(await shellwego(...args, '--output', 'json')) as T;
}

async function failure(...args: string[]): Promise<{ code: number; stderr: string }> {
  return run(process.execPath, [cli, ...args], { cwd: root, env: env() }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
}

describe('shellwego CLI', () => {
  it(
    'creates a join token a node can join with, and lists, cordons, labels and drains nodes',
    async () => {
      const created = await json<{ token: string; tokenId: string; expiresAt: string }>('node', 'token', 'create', '--label', 'zone=a', '--ttl', '30m');
      expect(created.token).toMatch(/^swj1\./);
      expect(Date.parse(created.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);
      const identity = await FakeNode.join(harness.url, harness.caPem, created.token, { hostname: 'cli-node' });
      const node = new FakeNode({
        nodeId: identity.nodeId,
        tls: identity.tls,
        schedulerUrls: [harness.url],
        capacity: { cpuMillis: 4000, memoryMib: 4096, maxInstances: 10 },
        hostname: 'cli-node',
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        // As a node with networking does: each instance gets the next address of its subnet.
        addressFor: () => `10.88.0.${nextHost++}`,
      });
      harness.nodes.push(node);
      node.start();
      await harness.events.waitFor((e) => e.nodeId === node.nodeId && e.detail.case === 'nodeState', 10_000, 'node READY');

      const nodes = await json<Array<{ id: string; state: string; labels: Record<string, string> }>>('node', 'ls');
      expect(nodes).toEqual([expect.objectContaining({ id: node.nodeId, state: 'NODE_STATE_READY', labels: { zone: 'a' }, subnet: '10.88.0.0/24' })]);
      const table = await shellwego('node', 'ls');
      expect(table.split('\n')[0]).toMatch(/^ID\s+HOSTNAME\s+STATE\s+CPU \(m\)/);
      expect(table).toMatch(new RegExp(`${node.nodeId}\\s+cli-node\\s+READY\\s+0/4000\\s+0/4096\\s+0/10\\s+10\\.88\\.0\\.0/24\\s+zone=a`));

      expect(await shellwego('node', 'cordon', node.nodeId)).toBe(`node ${node.nodeId} is CORDONED\n`);
      expect(await shellwego('node', 'uncordon', node.nodeId)).toBe(`node ${node.nodeId} is READY\n`);

      // Labels placement matches change only through an admin: set two, then remove one.
      const labelled = await json<{ labels: Record<string, string> }>('node', 'label', node.nodeId, 'disk=ssd', 'zone=b');
      expect(labelled.labels).toEqual({ zone: 'b', disk: 'ssd' });
      expect(await shellwego('node', 'label', node.nodeId, '--remove', 'disk')).toBe(`node ${node.nodeId} labels: zone=b\n`);
      expect((await failure('node', 'label', node.nodeId, 'not a label')).stderr).toMatch(/"not a label" is not key=value/);
      expect((await failure('node', 'token', 'create', '--max-memory', 'lots')).stderr).toMatch(/--max-memory: "lots" is not a size/);
    },
    CLI_TEST_MS,
  );

  it(
    'deploys, lists, inspects, scales and removes an app, with events in text and JSON',
    async () => {
      const deployed = await json<{ name: string; current: { version: number; imageDigest: string; spec: Record<string, unknown> } }>(
        'app',
        'deploy',
        'web',
        '--image',
        'shop:1.0',
        '--replicas',
        '2',
        '--cpu',
        '0.25',
        '--memory',
        '128',
        '--env',
        'MODE=prod',
        '--secret',
        'DB_PASSWORD',
        '--port',
        '8080',
        '--health',
        'http:8080/healthz',
        '--min-healthy',
        '100ms',
      );
      expect(deployed.current.version).toBe(1);
      expect(deployed.current.imageDigest).toMatch(/^sha256:/);
      expect(deployed.current.spec).toMatchObject({
        image: 'shop:1.0',
        replicas: 2,
        resources: { cpuMillis: 250, memoryMib: 128 },
        env: { MODE: 'prod' },
        secretNames: ['DB_PASSWORD'],
        healthCheck: { http: { port: 8080, path: '/healthz' } },
      });
      await harness.events.waitFor((e) => e.app === 'web' && e.message.includes('succeeded'), 10_000, 'web rolled out');

      expect(await shellwego('app', 'ls')).toMatch(
        /^NAME\s+VERSION\s+IMAGE\s+REPLICAS\s+HEALTHY\s+DEPLOYMENT\nweb\s+v1\s+shop:1\.0\s+2\s+2\s+v1: succeeded, 2\/2 healthy\n$/,
      );
      expect(await shellwego('app', 'get', 'web')).toMatch(
        /version {5}v1: shop:1\.0 -> sha256:[0-9a-f]{64}\n {2}replicas {4}2 x 250m CPU, 128 MiB\n {2}instances {3}2 HEALTHY/,
      );
      const instances = await json<Array<{ id: string; app: string; state: string; address: string }>>('instance', 'ls', '--app', 'web');
      expect(instances.map((i) => i.state)).toEqual(['INSTANCE_STATE_HEALTHY', 'INSTANCE_STATE_HEALTHY']);
      // Each instance's address as its node reported it, in the table, the JSON and app get.
      expect(instances.map((i) => i.address).sort()).toEqual(['10.88.0.2', '10.88.0.3']);
      const listed = await shellwego('instance', 'ls', '--app', 'web');
      expect(listed.split('\n')[0]).toMatch(/^ID\s+APP\s+VERSION\s+NODE\s+ADDRESS\s+STATE\s+SINCE\s+REASON$/);
      for (const i of instances) expect(listed).toMatch(new RegExp(`^${i.id}\\s+web\\s+v1\\s+\\S+\\s+${i.address.replaceAll('.', '\\.')}\\s+HEALTHY\\s`, 'm'));
      const got = await shellwego('app', 'get', 'web');
      for (const i of instances) expect(got).toContain(`  instance    ${i.id}  v1  `);
      for (const i of instances) expect(got).toMatch(new RegExp(`${i.id}  v1  \\S+  ${i.address.replaceAll('.', '\\.')}  HEALTHY`));
      const gotJson = await json<{ instances: Array<{ id: string; address: string }> }>('app', 'get', 'web');
      expect(gotJson.instances.map((i) => i.address).sort()).toEqual(['10.88.0.2', '10.88.0.3']);

      const scaled = await json<{ current: { spec: { replicas: number } } }>('app', 'scale', 'web', '1');
      expect(scaled.current.spec.replicas).toBe(1);

      const text = await shellwego('events', '--app', 'web');
      expect(text).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +\d+ {2}app web v1: started \(0\/2 healthy\)$/m);
      expect(text).toMatch(/instance web-1-[0-9a-f]{8} \(10\.88\.0\.[23]\) RUNNING -> HEALTHY$/m);
      const lines = (await shellwego('events', '--app', 'web', '--output', 'json'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { cursor: string; app: string });
      expect(lines.every((l) => l.app === 'web')).toBe(true);
      const last = lines.at(-1)?.cursor ?? '0';
      expect(await shellwego('events', '--app', 'web', '--after', last)).toBe('');

      const rollback = await failure('app', 'rollback', 'web');
      expect(rollback.code).toBe(1);
      expect(rollback.stderr).toMatch(/^shellwego: failed precondition: app web has no earlier version/);

      const removed = await json<{ instancesStopped: number }>('app', 'rm', 'web');
      expect(removed.instancesStopped).toBeGreaterThanOrEqual(1);
      expect((await failure('app', 'get', 'web')).stderr).toMatch(/not found: app web not found/);
    },
    CLI_TEST_MS,
  );

  it(
    'follows events live until interrupted',
    async () => {
      await harness.deploy('live', { image: 'shop:1.0', resources: { cpuMillis: 100, memoryMib: 64 }, replicas: 1 });
      const child = spawn(process.execPath, [cli, 'events', '--app', 'live', '--follow'], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      const seen: string[] = [];
      // Each new instance starts with UNSPECIFIED -> PENDING, with or without a node to run it.
      const createdLines = (count: number) =>
        new Promise<void>((resolve) => {
          const check = () => {
            if (seen.filter((l) => l.includes('UNSPECIFIED -> PENDING')).length >= count) resolve();
          };
          child.stdout.on('data', check);
          check();
        });
      createInterface({ input: child.stdout }).on('line', (l) => seen.push(l));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // The stored events first; then a change made while it follows arrives live.
      await createdLines(1);
      await harness.apps.scaleApp({ name: 'live', replicas: 2 });
      await createdLines(2);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(seen[0]).toMatch(/app live v1: started/);
    },
    CLI_TEST_MS,
  );

  it(
    'says which flag is wrong',
    async () => {
      const bad = await failure('app', 'deploy', 'web', '--image', 'shop:1.0', '--cpu', 'lots');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toBe('shellwego: --cpu: "lots" is not a CPU amount like 0.5 or 500m\n');
      const invalid = await failure('app', 'deploy', 'web', '--image', 'shop:1.0', '--env', '1X=2');
      expect(invalid.stderr).toMatch(/^shellwego: invalid argument: spec\.env\["1X"\]: not an environment variable name/);
    },
    CLI_TEST_MS,
  );
});
