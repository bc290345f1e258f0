// Placement through the real scheduler and real node sessions: capacity,
// labels, cordon, replicas kept apart, bin-pack and spread, PENDING with a
// reason until capacity appears, grants bound to the chosen node, and secret
// refreshes sent to the nodes running an app.
import { readFile } from 'node:fs/promises';
import { Code } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { PlacementStrategy } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import { createGrantVerifier, GrantError, verifyGrant } from '@shellwego/kit/grant';
import { freePort } from '@shellwego/testing/free-port';
import type { FakeNode } from '@shellwego/testing/scheduler/fake-node';
import { rootfsSha256Of } from '@shellwego/testing/scheduler/registry-stand-in';
import { SchedulerHarness, spec } from '@shellwego/testing/scheduler/scheduler-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let harness: SchedulerHarness;
beforeAll(async () => {
  // No secrets service listens there: grants naming every workspace secret cannot be issued.
  harness = await SchedulerHarness.start({ env: { SHELLWEGO_SCHEDULER_SECRETS_URL: `https://127.0.0.1:${await freePort()}` } });
});
afterAll(async () => {
  await harness?.stop();
});

/** Waits for `count` placements of `app` and returns the chosen nodes in order. */
async function placements(app: string, count: number): Promise<string[]> {
  const isPlacement = (e: Event) => e.app === app && e.detail.case === 'placement' && e.detail.value.nodeId !== '';
  return harness.events.until(
    () => {
      const placed = harness.events.events.filter(isPlacement).map((e) => e.nodeId);
      return placed.length >= count ? placed : undefined;
    },
    10_000,
    `${count} placement(s) of ${app}`,
  );
}

function pendingReason(app: string): Promise<Event> {
  return harness.events.waitFor((e) => e.app === app && e.detail.case === 'placement' && e.detail.value.nodeId === '', 10_000, `${app} PENDING`);
}

describe('placement', () => {
  let small: FakeNode;
  let big: FakeNode;

  it('bin-packs onto the fullest node that fits, keeps replicas apart, and spreads when asked', async () => {
    small = await harness.addNode({ capacity: { cpuMillis: 3000, memoryMib: 3072, maxInstances: 20 }, tokenLabels: { group: 'pack' } });
    big = await harness.addNode({ capacity: { cpuMillis: 8000, memoryMib: 8192, maxInstances: 20 }, tokenLabels: { group: 'pack' } });
    const pack = { requiredLabels: { group: 'pack' } };
    const gib = { cpuMillis: 1000, memoryMib: 1024 };

    await harness.deploy('pack-a', spec({ resources: gib, placement: pack }));
    expect(await placements('pack-a', 1)).toEqual([small.nodeId]);
    await harness.deploy('pack-b', spec({ resources: gib, placement: pack }));
    expect(await placements('pack-b', 1)).toEqual([small.nodeId]);

    // Two replicas of 512 MiB: the first fills the small node, the second may not join it.
    await harness.deploy('pair', spec({ resources: { cpuMillis: 500, memoryMib: 512 }, replicas: 2, placement: pack }));
    expect((await placements('pair', 2)).sort()).toEqual([small.nodeId, big.nodeId].sort());

    await harness.deploy('spready', spec({ resources: gib, placement: { ...pack, strategy: PlacementStrategy.SPREAD } }));
    expect(await placements('spready', 1)).toEqual([big.nodeId]);

    // What the scheduler says it reserved matches what was placed: small holds 2.5 vCPU and 2.5 GiB.
    const { nodes } = await harness.nodeService.listNodes({});
    expect(nodes.find((n) => n.id === small.nodeId)?.allocated).toMatchObject({ cpuMillis: 2500, memoryMib: 2560 });
    expect(nodes.find((n) => n.id === small.nodeId)?.instanceCount).toBe(3);
  });

  it('sends an assignment whose grant verifies for the chosen node only', async () => {
    const assign = await small.waitForAssign((a) => a.spec?.app === 'pack-a', 5_000);
    const digest = harness.registry.add('shop:1.0');
    expect(assign.spec).toMatchObject({ app: 'pack-a', version: 1, imageDigest: digest, argv: ['/bin/app', '--serve'] });
    expect(assign.spec?.resources).toMatchObject({ cpuMillis: 1000, memoryMib: 1024 });

    const verifier = createGrantVerifier([await readFile(harness.platform.pki.grantPublicKey, 'utf8')]);
    const claims = verifyGrant(assign.grant, verifier, { audience: 'secrets', nodeId: small.nodeId, imageDigest: digest });
    expect(claims).toMatchObject({ instanceId: assign.spec?.instanceId, app: 'pack-a', nodeId: small.nodeId });
    expect(claims.expiresAt.getTime() - claims.issuedAt.getTime()).toBe(2 * 60_000);
    // The rootfs goes with a grant of its own, for the registry only; each refuses the other's.
    // It pins the rootfs sha256 the registry reported at deploy, which the node checks its download against.
    expect(verifyGrant(assign.rootfsGrant, verifier, { audience: 'registry', nodeId: small.nodeId, imageDigest: digest })).toMatchObject({
      audience: 'registry',
      rootfsSha256: rootfsSha256Of(digest),
    });
    const { app } = await harness.apps.getApp({ name: 'pack-a' });
    expect(app?.current?.rootfsSha256).toBe(rootfsSha256Of(digest));
    expect(() => verifyGrant(assign.rootfsGrant, verifier, { audience: 'secrets', nodeId: small.nodeId })).toThrow(/for the registry service, not secrets/);
    expect(() => verifyGrant(assign.grant, verifier, { audience: 'registry', nodeId: small.nodeId })).toThrow(/for the secrets service, not registry/);
    let refused: unknown;
    try {
      verifyGrant(assign.grant, verifier, { audience: 'secrets', nodeId: big.nodeId });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(GrantError);
    expect((refused as GrantError).reason).toBe('wrong-node');
  });

  it("refreshes an app's secrets with a fresh grant for each running instance, on its own node only", async () => {
    const { instances } = await harness.apps.listInstances({ app: 'pack-a' });
    const running = instances.filter((i) => i.state === InstanceState.HEALTHY);
    expect(running.length).toBeGreaterThan(0);
    const { instancesRefreshed } = await harness.apps.refreshAppSecrets({ name: 'pack-a' });
    expect(instancesRefreshed).toBe(running.length);

    const verifier = createGrantVerifier([await readFile(harness.platform.pki.grantPublicKey, 'utf8')]);
    for (const instance of running) {
      const node = [small, big].find((n) => n.nodeId === instance.nodeId) as FakeNode;
      const refresh = await node.waitFor(
        () => node.received.map((r) => r.msg).find((m) => m.case === 'refreshSecrets' && m.value.instanceId === instance.id),
        5_000,
        `RefreshSecrets for ${instance.id}`,
      );
      const grant = refresh.case === 'refreshSecrets' ? refresh.value.grant : undefined;
      expect(verifyGrant(grant, verifier, { audience: 'secrets', nodeId: instance.nodeId })).toMatchObject({ instanceId: instance.id, app: 'pack-a' });
    }
    await expect(harness.apps.refreshAppSecrets({ name: 'no-such-app' })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it('fails an instance whose grant must name every workspace secret when the secrets service cannot list them, sending no Assign', async () => {
    const from = harness.events.events.length;
    await harness.deploy(
      'aegis',
      spec({ resources: { cpuMillis: 100, memoryMib: 64 }, placement: { requiredLabels: { group: 'pack' } }, allWorkspaceSecrets: true }),
    );
    const failed = await harness.events.waitFor(
      (e) => e.app === 'aegis' && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.FAILED,
      15_000,
      'aegis FAILED',
      from,
    );
    expect(failed.detail.case === 'instanceState' ? failed.detail.value.reason : '').toMatch(
      /^its grant could not be issued: the secrets service at https:\/\/127\.0\.0\.1:\d+ did not list the workspace's secret names/,
    );
    expect([...small.assignments, ...big.assignments].filter((a) => a.spec?.app === 'aegis')).toEqual([]);
    await harness.apps.deleteApp({ name: 'aegis' });
  });

  it('honours labels and cordon, and keeps instances PENDING with a reason until a node can take them', async () => {
    const ssd = await harness.addNode({ capacity: { cpuMillis: 2000, memoryMib: 2048, maxInstances: 20 }, tokenLabels: { group: 'lab', disk: 'ssd' } });
    await harness.addNode({ capacity: { cpuMillis: 2000, memoryMib: 2048, maxInstances: 20 }, tokenLabels: { group: 'lab' } });
    const small512 = { cpuMillis: 250, memoryMib: 512 };

    await harness.deploy('ssd-only', spec({ resources: small512, replicas: 2, placement: { requiredLabels: { group: 'lab', disk: 'ssd' } } }));
    expect(await placements('ssd-only', 2)).toEqual([ssd.nodeId, ssd.nodeId]);

    await harness.nodeService.cordonNode({ nodeId: ssd.nodeId });
    await harness.deploy('ssd-later', spec({ resources: small512, placement: { requiredLabels: { group: 'lab', disk: 'ssd' } } }));
    expect((await pendingReason('ssd-later')).detail.value).toMatchObject({
      reason: expect.stringMatching(/no READY node has labels disk=ssd, group=lab \(1 node is cordoned\)/),
    });
    await harness.nodeService.cordonNode({ nodeId: ssd.nodeId, uncordon: true });
    expect(await placements('ssd-later', 1)).toEqual([ssd.nodeId]);

    await harness.deploy('gpu', spec({ placement: { requiredLabels: { gpu: 'true' } } }));
    expect((await pendingReason('gpu')).message).toMatch(/no node has label gpu=true/);

    await harness.deploy('huge', spec({ resources: { cpuMillis: 1000, memoryMib: 16_384 }, placement: { requiredLabels: { group: 'lab' } } }));
    expect((await pendingReason('huge')).message).toMatch(/no node with label group=lab has 16384 MiB free; the largest node has 2048 MiB in total/);
    const { instances } = await harness.apps.listInstances({ app: 'huge' });
    expect(instances.map((i) => [i.state, i.nodeId])).toEqual([[InstanceState.PENDING, '']]);
    expect(instances[0]?.reason).toMatch(/16384 MiB/);

    const roomy = await harness.addNode({ capacity: { cpuMillis: 4000, memoryMib: 32_768, maxInstances: 20 }, tokenLabels: { group: 'lab' } });
    expect(await placements('huge', 1)).toEqual([roomy.nodeId]);
    await roomy.waitFor(() => (roomy.instances.size === 1 ? true : undefined), 5_000, 'the huge instance to run');
  });
});
