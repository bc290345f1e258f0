// A compromised registry serves a trojan root filesystem. The attacker changed the registry's
// rootfs cache after the genuine image was imported: the genuine image's ext4 file now holds
// another image's root filesystem (the trojan), and the sha256 file beside it names the trojan's
// hash, so the registry streams the trojan with a trailer that matches it. Before grants pinned the
// rootfs, the node agent checked the bytes only against that trailer and booted the trojan with
// the app's secrets. Now the scheduler pins the sha256 the registry recorded at import in the
// rootfs grant, and the real node agent refuses the download: the instance FAILS with the reason,
// the secrets service releases nothing for it, and no trojan stays in the node's cache.
import { randomBytes } from 'node:crypto';
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchRootfsToFile } from '@shellwego/clients/registry';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryImageArchive } from '../e2e/support/canary-image.js';
import { isInstanceState, reasonOf, statesOf } from '../e2e/support/instance-watch.js';
import { NodePlatform } from '../e2e/support/node-platform.js';

const skip = busyboxMissing();
if (skip !== undefined) console.warn(`[rootfs-pinning] SKIPPING: ${skip}`);

let platform: NodePlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

describe.skipIf(skip !== undefined)('a registry serving a trojan root filesystem', () => {
  it('is refused by the node agent against the sha256 the grant pins, and the instance gets no secret', { timeout: 300_000 }, async () => {
    platform = await NodePlatform.start();
    const p = platform;
    const agent = await p.addAgent({ key: 'victim', driver: 'process' });
    const genuine = await p.importImage('shop:1', await canaryImageArchive('shop:1'));
    const trojan = await p.importImage('trojan:1', await canaryImageArchive('trojan:1', ['TROJAN=1']));
    const pinned = (await p.registry.resolveImage({ reference: 'shop:1' })).image?.rootfsSha256 ?? '';
    const trojanSha = (await p.registry.resolveImage({ reference: 'trojan:1' })).image?.rootfsSha256 ?? '';
    expect(pinned).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(trojanSha).not.toBe(pinned);

    // The compromise: the genuine image's cached rootfs and its sha256 file now say "trojan".
    const cache = join(p.home, 'registry', 'rootfs');
    const file = (digest: string) => join(cache, `${digest.slice('sha256:'.length)}.ext4`);
    expect((await readFile(`${file(genuine)}.sha256`, 'utf8')).trim()).toBe(pinned);
    await copyFile(file(trojan), file(genuine));
    await writeFile(`${file(genuine)}.sha256`, `${trojanSha}\n`);
    // The registry now vouches for the trojan: its stream and trailer agree.
    const served = await fetchRootfsToFile(p.registry, { imageDigest: genuine, path: join(p.home, 'served.ext4') });
    expect(served.sha256).toBe(trojanSha);

    const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
    await p.setSecret('shop', 'CANARY', canary);
    const from = p.events.events.length;
    const port = await freePort();
    const deploy = await p.cli([
      'app',
      'deploy',
      'shop',
      '--image',
      'shop:1',
      '--secret',
      'CANARY',
      '--env',
      `PORT=${port}`,
      '--health',
      `tcp:${port}`,
      '--memory',
      '64Mi',
      '--cpu',
      '250m',
      '--label',
      'role=victim',
    ]);
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    // Whichever comes first: the refusal, or the start that would resolve the secret.
    const failed = await p.events.waitFor(
      (e) => isInstanceState(e, 'shop', InstanceState.FAILED) || isInstanceState(e, 'shop', InstanceState.STARTING),
      120_000,
      'an instance of shop FAILED or STARTING',
      from,
    );
    expect(InstanceState[failed.detail.case === 'instanceState' ? failed.detail.value.to : 0]).toBe('FAILED');
    expect(failed.nodeId).toBe(agent.nodeId);
    expect(reasonOf(failed)).toContain(`its sha256 is ${trojanSha} (the registry says ${trojanSha}), but the grant pins ${pinned}`);
    // It never got past the download, so no secret was asked for, let alone delivered.
    const states = statesOf(p.events.events, failed.instanceId);
    expect(states).not.toContain(InstanceState.BOOTING);
    expect(states).not.toContain(InstanceState.STARTING);
    const { events: released } = await p.secrets.listAuditEvents({ instanceId: failed.instanceId });
    expect(released).toEqual([]);
    expect(p.agent('victim').process.lines.filter((line) => line.includes('"workload started"'))).toEqual([]);
    // And the node's cache holds no copy of it.
    expect((await readdir(join(agent.stateDir, 'rootfs'))).filter((name) => name.endsWith('.ext4'))).toEqual([]);
  });
});
