// The Aegis model, asked for explicitly: an app deployed with --all-workspace-secrets receives
// every workspace secret current at each start and refresh, and an app without it only the names
// it lists (here none). Real processes over mTLS, node agent on the process driver: the workloads
// print the sha256 of $CANARY, a workspace secret set only after both apps were deployed. The
// grants' names are read back from the secrets service's audit of each release: exactly the
// workspace's secrets when the grant was issued, never another app's.
import { randomBytes } from 'node:crypto';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { AuditAction } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryImageArchive, canaryLine } from './support/canary-image.js';
import { instanceReached, logsUntil, reasonOf } from './support/instance-watch.js';
import { NodePlatform } from './support/node-platform.js';

const skip = busyboxMissing();
if (skip !== undefined) console.warn(`[all-workspace-secrets] SKIPPING: ${skip}`);

let platform: NodePlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

describe.skipIf(skip !== undefined)('an app deployed with --all-workspace-secrets', () => {
  it('receives every workspace secret current at each start and refresh; an app without it does not', { timeout: 300_000 }, async () => {
    platform = await NodePlatform.start();
    const p = platform;
    const agent = await p.addAgent({ key: 'aegis', driver: 'process' });
    await p.importImage('canary:1', await canaryImageArchive('canary:1'));
    const set = async (name: string, value: Buffer, app?: string) => {
      const result = await p.cli(['secret', 'set', name, ...(app === undefined ? [] : ['--app', app])], { input: value });
      expect(result.exitCode, result.stderr).toBe(0);
    };
    await set('FIRST', Buffer.from('first'));
    // Another app's secret: never in a workspace grant.
    await set('OTHER_APPS', Buffer.from('not yours'), 'other');

    const deploy = async (app: string, flags: string[]) => {
      const port = await freePort();
      const from = p.events.events.length;
      const args = ['app', 'deploy', app, '--image', 'canary:1', '--env', `PORT=${port}`, '--health', `tcp:${port}`, '--memory', '64Mi'];
      const result = await p.cli([...args, '--cpu', '100m', '--label', 'role=aegis', ...flags]);
      expect(result.exitCode, result.stderr).toBe(0);
      return (await instanceReached(p.events, app, InstanceState.HEALTHY, 120_000, from)).instanceId;
    };
    const shared = await deploy('shared', ['--all-workspace-secrets']);
    const strict = await deploy('strict', []);
    const { app } = await p.apps.getApp({ name: 'shared' });
    expect(app?.current?.spec?.allWorkspaceSecrets).toBe(true);

    const released = async (instanceId: string) =>
      (await p.secrets.listAuditEvents({ instanceId, action: AuditAction.RESOLVE })).events.map((e) => e.secrets.map((s) => s.name).sort());
    // At its start the workspace held FIRST only: that is what its grant named.
    expect(await released(shared)).toEqual([['FIRST']]);
    expect(await released(strict)).toEqual([]);
    const unset = canaryLine(new Uint8Array());
    expect(await logsUntil(agent.client, shared, unset, 30_000)).toContain(unset);

    // Set after both were deployed; each app's next refresh decides who gets it.
    const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
    await set('CANARY', canary);
    const refreshed = async (app: string, instanceId: string) => {
      const from = p.events.events.length;
      expect((await p.apps.refreshAppSecrets({ name: app })).instancesRefreshed).toBe(1);
      const again = await p.events.waitFor(
        (e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.RUNNING,
        60_000,
        `${app} restarted`,
        from,
      );
      expect(reasonOf(again)).toBe('restarted with refreshed secrets');
    };
    await refreshed('shared', shared);
    await refreshed('strict', strict);

    expect(await logsUntil(agent.client, shared, canaryLine(canary), 30_000)).toContain(canaryLine(canary));
    expect(await released(shared)).toEqual([['FIRST'], ['CANARY', 'FIRST']]);
    // The app without the flag restarted too, and still has no secret at all.
    const restarts = (instanceId: string) =>
      p.agent('aegis').process.lines.flatMap((line) => {
        const entry = JSON.parse(line.startsWith('{') ? line : '{}') as { instance?: string; msg?: string; secrets?: number };
        return entry.instance === instanceId && entry.msg === 'workload restarted with refreshed secrets' ? [entry.secrets] : [];
      });
    expect(restarts(shared)).toEqual([2]);
    expect(restarts(strict)).toEqual([0]);
    expect(await logsUntil(agent.client, strict, unset, 30_000)).not.toContain(canaryLine(canary));
    expect(await released(strict)).toEqual([]);
    // The workspace's names, which is what the scheduler asked for (names only).
    expect((await p.secrets.listWorkspaceSecretNames({})).names).toEqual(['CANARY', 'FIRST']);
  });
});
