// The node agent against the real control plane (separate processes over mTLS), on the process
// driver where possible: a kill -9 restart re-adopts running instances without the scheduler
// seeing a restart; a secret refresh restarts the workload with the new value; bad input (a
// corrupt rootfs, a kernel that does not boot, a guest agent that never answers, an app that
// exits at once, a missing secret) ends FAILED with a reason a person can act on, leaves nothing
// behind, and the agent keeps serving the other instances. Last, none of the secrets set is in any
// platform process's environment or command line, nor in any line, CLI output, file or row.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { AppSpec } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { loadConfig } from '@shellwego/kit/config';
import { createLogger } from '@shellwego/kit/log';
import { createMetricsRegistry } from '@shellwego/kit/metrics';
import { findExecutable, isRunning, readCmdline } from '@shellwego/kit/process';
import { NodeAgent, nodeAgentConfig } from '@shellwego/node-agent';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { leaks } from '@shellwego/testing/leak-scan/leak-scan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNoLeak, expectNoProcessLeak } from './support/canary-flow.js';
import { canaryImageArchive, canaryLine } from './support/canary-image.js';
import { instanceReached, lineAppears, logsUntil, reasonOf, statesOf } from './support/instance-watch.js';
import { NodePlatform, readStateFile } from './support/node-platform.js';

type SpecInit = Partial<Omit<AppSpec, '$typeName'>> & { image: string };

const muteGuestAgent = fileURLToPath(new URL('./fixtures/mute-guest-agent.mjs', import.meta.url));
const skip = busyboxMissing();
if (skip !== undefined) console.warn(`[node-agent-lifecycle] SKIPPING: ${skip}`);
const qemu = findExecutable('qemu-system-x86_64');
if (qemu === undefined)
  console.warn('[node-agent-lifecycle] the "kernel that does not boot" case is skipped: qemu-system-x86_64 is missing (Debian package qemu-system-x86)');

let p: NodePlatform;
let inProcess: NodeAgent | undefined;
const secretsSet: Buffer[] = [];
const kept: { app: string; instanceId: string; canary: Buffer; pid: number }[] = [];

beforeAll(async () => {
  if (skip !== undefined) return;
  // A restart must not look like a dead node: the failure detector is not what is tested here.
  p = await NodePlatform.start({ SHELLWEGO_SCHEDULER_HEARTBEAT_GRACE: '60s' });
  await p.addAgent({ key: 'main', driver: 'process' });
  await p.importImage('canary:1', await canaryImageArchive('canary:1'));
}, 180_000);

afterAll(async () => {
  await inProcess?.close();
  await p?.stop();
});

function deploy(app: string, role: string, spec: SpecInit) {
  return p.apps.deployApp({
    name: app,
    spec: { replicas: 1, resources: { cpuMillis: 100, memoryMib: 32 }, ...spec, placement: { requiredLabels: { role } } },
  });
}

async function setCanary(app: string): Promise<Buffer> {
  const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
  secretsSet.push(canary);
  await p.setSecret(app, 'CANARY', Buffer.from(canary));
  return canary;
}

async function healthyApp(app: string, role: string, port: number): Promise<{ instanceId: string; canary: Buffer }> {
  const canary = await setCanary(app);
  const from = p.events.events.length;
  await deploy(app, role, {
    image: 'canary:1',
    env: { PORT: String(port) },
    secretNames: ['CANARY'],
    healthCheck: { probe: { case: 'tcp', value: { port } } } as AppSpec['healthCheck'],
  });
  const healthy = await instanceReached(p.events, app, InstanceState.HEALTHY, 60_000, from);
  return { instanceId: healthy.instanceId, canary };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** Removes an app and waits until every instance it had is STOPPED or FAILED. */
async function removeApp(app: string): Promise<void> {
  const { instances } = await p.apps.listInstances({ app });
  const ids = new Set(instances.map((i) => i.id));
  await p.apps.deleteApp({ name: app });
  const ended = new Set([InstanceState.STOPPED, InstanceState.FAILED]);
  await p.events.until(
    () =>
      [...ids].every((id) => p.events.events.some((e) => e.instanceId === id && e.detail.case === 'instanceState' && ended.has(e.detail.value.to)))
        ? true
        : undefined,
    60_000,
    `every instance of ${app} ended`,
  );
}

/** Processes whose command line names a path under dir (a VMM or guest agent left running). */
async function processesUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if ((readCmdline(Number(entry)) ?? []).some((arg) => arg.includes(`${dir}/`))) pids.push(Number(entry));
  }
  return pids;
}

describe.skipIf(skip !== undefined)('node agent lifecycle against the real control plane', () => {
  it('re-adopts running instances after kill -9 and reports them in Hello, with no restart seen by the scheduler', { timeout: 180_000 }, async () => {
    for (const app of ['keep-a', 'keep-b']) {
      const { instanceId, canary } = await healthyApp(app, 'main', await freePort());
      kept.push({ app, instanceId, canary, pid: 0 });
    }
    const main = p.agent('main');
    const before = await readStateFile(main.stateDir);
    for (const k of kept) {
      k.pid = before.instances.find((i) => i.instanceId === k.instanceId)?.vm.pid ?? 0;
      expect(isRunning(k.pid)).toBe(true);
    }

    expect(await p.platform.stopProcess('main', 'SIGKILL')).toBe('SIGKILL');
    for (const k of kept) expect(isRunning(k.pid), `${k.app}'s guest agent survives the agent`).toBe(true);
    const cursor = p.events.events.length;
    const scheduler = p.platform.service('scheduler').lines;
    const schedulerFrom = scheduler.length;
    const agentFrom = main.process.lines.length;

    const restarted = await p.platform.restartProcess('main');
    const opened = await lineAppears(
      scheduler,
      (l) => l.includes('node session opened') && l.includes(main.nodeId),
      schedulerFrom,
      60_000,
      'the scheduler opens the session of the restarted agent',
    );
    expect(JSON.parse(opened)).toMatchObject({ node: main.nodeId, running: 2 });
    const agentLines = restarted.lines.slice(agentFrom).join('\n');
    expect(agentLines).toMatch(/re-adopted running instances/);
    expect(agentLines).toMatch(/"running":2[,}].*sending Hello|sending Hello.*"running":2/);

    // A marker after the Hello: every event the Hello caused comes before these two.
    await p.nodes.cordonNode({ nodeId: main.nodeId });
    await p.nodes.cordonNode({ nodeId: main.nodeId, uncordon: true });
    await p.events.waitFor(
      (e) => e.nodeId === main.nodeId && e.detail.case === 'nodeState' && e.detail.value.to === NodeState.READY,
      30_000,
      'uncordoned',
      cursor,
    );

    const ids = kept.map((k) => k.instanceId);
    const instanceEvents = p.events.events
      .slice(cursor)
      .filter((e) => e.detail.case === 'instanceState' && (ids.includes(e.instanceId) || kept.some((k) => k.app === e.app)));
    expect(instanceEvents.map((e) => e.message)).toEqual([]);
    const { instances } = await p.apps.listInstances({ nodeId: main.nodeId });
    expect(instances.map((i) => [i.id, InstanceState[i.state]]).sort()).toEqual(ids.map((id) => [id, 'HEALTHY']).sort());
    const after = await readStateFile(main.stateDir);
    for (const k of kept) {
      expect(after.instances.find((i) => i.instanceId === k.instanceId)?.vm.pid).toBe(k.pid);
      // Printed once: the workload was not started again.
      const output = await logsUntil(main.client, k.instanceId, canaryLine(k.canary), 10_000);
      expect(count(output, 'canary-sha256=')).toBe(1);
    }
    const status = await main.client.getNodeStatus({});
    expect(status.connected).toBe(true);
    expect(status.instances.filter((i) => ids.includes(i.instanceId)).map((i) => InstanceState[i.state])).toEqual(['HEALTHY', 'HEALTHY']);
  });

  it('restarts the workload with refreshed secrets when the operator refreshes the app (RefreshSecrets over the Session, metrics count it)', {
    timeout: 120_000,
  }, async () => {
    // This agent runs in the test process so the test can read its output buffer and metrics
    // directly; it joins and holds a real Session like any other agent.
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((l) => l !== ''),
        );
        done();
      },
    });
    const { token } = await p.nodes.createJoinToken({ labels: { role: 'inproc' } });
    const env = {
      SHELLWEGO_HOME: p.home,
      SHELLWEGO_NODE_AGENT_STATE_DIR: join(p.home, 'agents', 'inproc'),
      SHELLWEGO_NODE_AGENT_JOIN_TOKEN: token,
      SHELLWEGO_NODE_AGENT_SCHEDULER_URLS: p.platform.url('scheduler'),
      SHELLWEGO_NODE_AGENT_SECRETS_URL: p.platform.url('secrets'),
      SHELLWEGO_NODE_AGENT_REGISTRY_URL: p.platform.url('registry'),
      SHELLWEGO_NODE_AGENT_VM_DRIVER: 'process',
      SHELLWEGO_NODE_AGENT_GUEST_AGENT_BUNDLE: p.guestAgentBundle,
      SHELLWEGO_NODE_AGENT_HOSTNAME: 'inproc',
      SHELLWEGO_NODE_AGENT_STOP_VMS_ON_EXIT: 'true',
    };
    const joinedFrom = p.events.events.length;
    const registry = createMetricsRegistry();
    inProcess = await NodeAgent.create(
      loadConfig(nodeAgentConfig, { env }),
      createLogger({ service: 'node-agent', destination: sink, level: 'debug' }),
      undefined,
      registry,
    );
    await inProcess.joinAndConnect();
    await p.events.waitFor(
      (e) => e.nodeId === inProcess?.nodeId && e.detail.case === 'nodeState' && e.detail.value.to === NodeState.READY,
      30_000,
      'in-process node READY',
      joinedFrom,
    );

    const { instanceId, canary } = await healthyApp('fresh', 'inproc', await freePort());
    const output = inProcess.reconciler.find(instanceId)?.output;
    const outputText = async (until: string) => {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 30_000);
      let text = '';
      for await (const chunk of output?.read(true, abort.signal) ?? []) {
        text += Buffer.from(chunk.data).toString('utf8');
        if (text.includes(until)) break;
      }
      clearTimeout(timer);
      return text;
    };
    expect(await outputText(canaryLine(canary))).toContain(canaryLine(canary));

    const fresh = await setCanary('fresh');
    const from = p.events.events.length;
    // The real path: the operator asks the scheduler, which sends RefreshSecrets with a fresh grant on the node's Session.
    expect((await p.apps.refreshAppSecrets({ name: 'fresh' })).instancesRefreshed).toBe(1);
    const again = await p.events.waitFor(
      (e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.HEALTHY,
      30_000,
      'healthy again',
      from,
    );
    expect(statesOf(p.events.events.slice(from, p.events.events.indexOf(again) + 1), instanceId)).toEqual([InstanceState.RUNNING, InstanceState.HEALTHY]);
    expect(reasonOf(p.events.events.slice(from).find((e) => e.instanceId === instanceId) ?? again)).toBe('restarted with refreshed secrets');
    const text = await outputText(canaryLine(fresh));
    expect(count(text, 'canary-sha256=')).toBe(2);
    expect(text.indexOf(canaryLine(canary))).toBeLessThan(text.indexOf(canaryLine(fresh)));

    const metrics = await registry.metrics();
    expect(metrics).toContain('shellwego_node_agent_secret_pushes_total{kind="refresh",outcome="ok"} 1');
    expect(metrics).toContain('shellwego_node_agent_secret_pushes_total{kind="run",outcome="ok"} 1');
    expect(metrics).toContain('shellwego_node_agent_instances{state="HEALTHY"} 1');
    expect(metrics).toMatch(/shellwego_node_agent_boot_seconds_count 1\n/);
    // The guest's own figures, from its Health answers (the process driver's guest sees the host's memory).
    expect(metrics).toContain('shellwego_node_agent_guests_reporting 1');
    expect(Number(/^shellwego_node_agent_guest_memory_bytes\{kind="total"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(64 * 1024 * 1024);
    expect(Number(/^shellwego_node_agent_guest_agent_resident_bytes (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(1024 * 1024);

    await removeApp('fresh');
    expect(lines.filter((line) => secretsSet.some((s) => leaks(line, s)))).toEqual([]);
    expect(lines.some((line) => line.includes('workload restarted with refreshed secrets'))).toBe(true);
  });

  it('ends bad input in FAILED with an actionable reason, cleans up, and keeps serving the other instances', { timeout: 180_000 }, async () => {
    await p.addAgent({
      key: 'mute',
      driver: 'process',
      env: { SHELLWEGO_NODE_AGENT_GUEST_AGENT_BUNDLE: muteGuestAgent, SHELLWEGO_NODE_AGENT_BOOT_TIMEOUT: '3s' },
    });
    if (qemu !== undefined) {
      const junk = join(p.home, 'junk-guest-image');
      await mkdir(junk);
      for (const file of ['vmlinux', 'vmlinuz', 'initramfs.cpio.gz']) await writeFile(join(junk, file), 'this is not a kernel\n');
      await p.addAgent({ key: 'badkernel', driver: 'qemu', env: { SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR: junk } });
    }

    // A rootfs the registry built, then damaged on its disk: what arrives is not what the grant pins (nor what the registry vouches for).
    const corruptDigest = await p.importImage('corrupt:1', await canaryImageArchive('corrupt:1', ['VARIANT=corrupt']));
    for await (const _part of p.registry.fetchRootfs({ imageDigest: corruptDigest })) {
      // Drained: the first fetch builds the rootfs.
    }
    const built = join(p.home, 'registry', 'rootfs', `${corruptDigest.slice('sha256:'.length)}.ext4`);
    const size = (await stat(built)).size;
    const file = await open(built, 'r+');
    await file.write(Buffer.alloc(4096, 0x5a), 0, 4096, Math.floor(size / 2));
    await file.close();

    const cursor = p.events.events.length;
    const cases: { app: string; role: string; spec: SpecInit; reason: RegExp; exitCode?: number }[] = [
      {
        app: 'bad-rootfs',
        role: 'main',
        spec: { image: 'corrupt:1' },
        reason:
          /^cannot fetch the root filesystem of image sha256:[0-9a-f]{64}: the rootfs of .* failed verification: its sha256 is sha256:[0-9a-f]{64} \(the registry says sha256:[0-9a-f]{64}\), but the grant pins sha256:[0-9a-f]{64}: .*fetch it again$/,
      },
      { app: 'bad-guest', role: 'mute', spec: { image: 'canary:1' }, reason: /^the guest agent did not answer within 3 s of the VM starting/ },
      {
        app: 'bad-exit',
        role: 'main',
        spec: { image: 'canary:1', command: ['/bin/busybox', 'sh', '-c', 'echo "config file /etc/app.conf missing" >&2; exit 3'] },
        reason: /^the workload exited with code 3 \d+\.\d s after it started; its output: `shellwego logs bad-exit-1-[0-9a-f]+`$/,
        exitCode: 3,
      },
      { app: 'bad-secret', role: 'main', spec: { image: 'canary:1', secretNames: ['NOPE'] }, reason: /^cannot resolve the secrets NOPE: .*NOPE/ },
      ...(qemu === undefined
        ? []
        : [
            {
              app: 'bad-kernel',
              role: 'badkernel',
              spec: { image: 'canary:1' },
              reason: /^the VM did not boot: qemu \(\w+\) did not start: qemu exited \(code 1.*kernel/,
            },
          ]),
    ];
    for (const c of cases) await deploy(c.app, c.role, c.spec);
    const failures = await Promise.all(cases.map((c) => instanceReached(p.events, c.app, InstanceState.FAILED, 60_000, cursor)));
    cases.forEach((c, i) => {
      const failed = failures[i];
      expect(reasonOf(failed as NonNullable<typeof failed>), c.app).toMatch(c.reason);
      if (c.exitCode !== undefined && failed?.detail.case === 'instanceState') expect(failed.detail.value.exitCode).toBe(c.exitCode);
    });
    const exited = failures[cases.findIndex((c) => c.app === 'bad-exit')];
    const exitLogs = await p.cli(['logs', exited?.instanceId ?? ''], { nodeAgent: p.agent('main').process.url });
    expect(exitLogs.stderr).toContain('config file /etc/app.conf missing');
    // Asked at the wrong node, the CLI says where the instance was placed.
    const guestFailure = failures[cases.findIndex((c) => c.app === 'bad-guest')];
    const elsewhere = await p.cli(['logs', guestFailure?.instanceId ?? ''], { nodeAgent: p.agent('main').process.url });
    expect(elsewhere.exitCode).toBe(1);
    expect(elsewhere.stderr).toContain(`the scheduler places it on node ${p.agent('mute').nodeId}: pass --node-agent`);
    for (const c of cases) await removeApp(c.app);

    // Nothing left of the failed instances: work dirs, state records, processes.
    const main = p.agent('main');
    expect((await readdir(join(main.stateDir, 'vms'))).sort()).toEqual(kept.map((k) => k.instanceId).sort());
    expect((await readStateFile(main.stateDir)).instances.map((i) => i.instanceId).sort()).toEqual(kept.map((k) => k.instanceId).sort());
    for (const key of qemu === undefined ? ['mute'] : ['mute', 'badkernel']) {
      const agent = p.agent(key);
      expect(await readdir(join(agent.stateDir, 'vms')), key).toEqual([]);
      expect(await processesUnder(join(agent.stateDir, 'vms')), key).toEqual([]);
    }

    // The other instances never noticed, and the node still takes new work.
    const keptEvents = p.events.events.slice(cursor).filter((e) => kept.some((k) => k.instanceId === e.instanceId) && e.detail.case === 'instanceState');
    expect(keptEvents.map((e) => e.message)).toEqual([]);
    const later = await healthyApp('after', 'main', await freePort());
    expect(later.instanceId).toMatch(/^after-1-/);
  });

  it('leaks none of its secrets: process environments and command lines, lines at debug level, CLI output, files, kept work dirs, rows', {
    timeout: 180_000,
  }, async () => {
    // While the kept instances and the last one still run (the re-adopted guest agents included).
    await expectNoProcessLeak(p, secretsSet);
    await inProcess?.close();
    inProcess = undefined;
    await p.stopProcesses();
    // Every agent booted VMs (some failed, the rest were stopped on exit): their work dirs are kept under the home for the sweep.
    for (const agent of p.agents.values()) expect((await readdir(agent.keptWorkDirs)).length, agent.key).toBeGreaterThan(0);
    await expectNoLeak(p, secretsSet);
  });
});
