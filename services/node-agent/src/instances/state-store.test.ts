import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PersistedInstance, StateStore } from './state-store.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'na-state-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(id: string, state = InstanceState.RUNNING): PersistedInstance {
  return {
    instanceId: id,
    app: 'shop',
    version: 3,
    imageDigest: `sha256:${'a'.repeat(64)}`,
    cpuMillis: 500,
    memoryMib: 256,
    state,
    assignedAt: new Date('2025-01-01T00:00:00Z').toISOString(),
    healthIntervalMs: 2000,
    healthDeadlineAt: null,
    vm: {
      driver: 'process',
      instanceId: id,
      pid: 4242,
      channel: { kind: 'unix', path: `/run/x/${id}/guest.sock` },
      workDir: `/run/x/${id}`,
      bootedAt: '2025-01-01T00:00:01.000Z',
    },
  };
}

describe('StateStore', () => {
  it('persists entries atomically (mode 0600) and a new store reads them back', async () => {
    const sub = await mkdtemp(join(dir, 'a-'));
    const store = new StateStore(sub, capturingLogger().logger);
    expect(await store.load()).toEqual({ instances: [], problems: [] });
    store.put(entry('shop-3-aa'));
    store.put(entry('shop-3-bb'));
    store.put(entry('shop-3-aa', InstanceState.HEALTHY));
    store.remove('shop-3-bb');
    await store.flush();
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    const again = await new StateStore(sub, capturingLogger().logger).load();
    expect(again.problems).toEqual([]);
    expect(again.instances).toEqual([entry('shop-3-aa', InstanceState.HEALTHY)]);
  });

  it('reports unusable entries and keeps the usable ones', async () => {
    const sub = await mkdtemp(join(dir, 'b-'));
    const good = entry('ok-1');
    const noPid = { ...entry('bad-1'), vm: { ...entry('bad-1').vm, pid: 0 } };
    await writeFile(join(sub, 'instances.json'), JSON.stringify({ format: 1, instances: [good, noPid, { instanceId: 'x' }] }));
    const loaded = await new StateStore(sub, capturingLogger().logger).load();
    expect(loaded.instances.map((i) => i.instanceId)).toEqual(['ok-1']);
    expect(loaded.problems).toHaveLength(2);
    expect(loaded.problems[0]).toMatch(/field pid is missing or malformed/);
  });

  it('refuses a torn or foreign file with a reason instead of guessing', async () => {
    const sub = await mkdtemp(join(dir, 'c-'));
    await writeFile(join(sub, 'instances.json'), '{"format": 1, "instances": [');
    const loaded = await new StateStore(sub, capturingLogger().logger).load();
    expect(loaded.instances).toEqual([]);
    expect(loaded.problems[0]).toMatch(/not valid JSON/);
  });

  it('coalesces bursts of changes into few writes and never holds a caller up', async () => {
    const sub = await mkdtemp(join(dir, 'd-'));
    const store = new StateStore(sub, capturingLogger().logger);
    const started = performance.now();
    for (let i = 0; i < 200; i++) store.put(entry(`burst-${i}`));
    expect(performance.now() - started).toBeLessThan(100);
    await store.flush();
    const written = JSON.parse(await readFile(store.path, 'utf8')) as { instances: unknown[] };
    expect(written.instances).toHaveLength(200);
  });
});
