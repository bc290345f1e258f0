// The end-to-end secret path, shared by the process-driver and the real-VM tests: an app image
// built here is imported, a random CANARY secret set, the app deployed with it through the CLI;
// the instance must pass through every state to HEALTHY and print the canary's sha256, read back
// through the node agent; `app rm` must stop it and leave no per-instance file. While it runs,
// the environment and command line of every platform process are searched for the plaintext;
// afterwards every file (the VM's kept work dir included), log line, CLI output and database row.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { isRunning } from '@shellwego/kit/process';
import { leaks, type Secrets, scanDatabases, scanFiles } from '@shellwego/testing/leak-scan/leak-scan';
import { scanProcesses } from '@shellwego/testing/leak-scan/process-scan';
import { expect } from 'vitest';
import { canaryImageArchive, canaryLine } from './canary-image.js';
import { instanceReached, logsUntil, statesOf } from './instance-watch.js';
import { type NodePlatform, readStateFile } from './node-platform.js';

export interface CanaryFlowOptions {
  readonly agentKey: string;
  readonly app: string;
  readonly port: number;
  readonly memory: string;
  readonly healthyTimeoutMs: number;
}

export interface CanaryFlowResult {
  readonly canary: Buffer;
  readonly instanceId: string;
  /** The regular files of the VM's work dir, as the node agent kept them after the stop. */
  readonly keptFiles: string[];
  /** Milliseconds from the ASSIGNED event to each later state. */
  readonly phases: Partial<Record<string, number>>;
}

const EVERY_STATE = [
  InstanceState.PENDING,
  InstanceState.ASSIGNED,
  InstanceState.PULLING,
  InstanceState.BOOTING,
  InstanceState.STARTING,
  InstanceState.RUNNING,
  InstanceState.HEALTHY,
];

export async function canaryFlow(p: NodePlatform, options: CanaryFlowOptions): Promise<CanaryFlowResult> {
  const { app } = options;
  const agent = p.agent(options.agentKey);
  const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);
  const tag = `${app}:1`;
  await p.importImage(tag, await canaryImageArchive(tag));
  const set = await p.cli(['secret', 'set', 'CANARY', '--app', app], { input: canary });
  expect(set.exitCode, set.stderr).toBe(0);

  const from = p.events.events.length;
  const deploy = await p.cli([
    'app',
    'deploy',
    app,
    '--image',
    tag,
    '--secret',
    'CANARY',
    '--env',
    `PORT=${options.port}`,
    '--health',
    `tcp:${options.port}`,
    '--memory',
    options.memory,
    '--cpu',
    '250m',
    '--label',
    `role=${options.agentKey}`,
  ]);
  expect(deploy.exitCode, deploy.stderr).toBe(0);
  const healthy = await instanceReached(p.events, app, InstanceState.HEALTHY, options.healthyTimeoutMs, from);
  const instanceId = healthy.instanceId;
  expect(healthy.nodeId).toBe(agent.nodeId);
  expect(statesOf(p.events.events, instanceId)).toEqual(EVERY_STATE);
  const phases = phasesOf(p, instanceId);

  // The workload's own output, through the node agent: the API, then the CLI by app name.
  const expected = canaryLine(canary);
  expect(await logsUntil(agent.client, instanceId, expected, 10_000)).toContain(expected);
  const logs = await p.cli(['logs', app], { nodeAgent: agent.process.url });
  expect(logs.exitCode, logs.stderr).toBe(0);
  expect(logs.stdout).toContain(expected);
  expect(logs.stderr).toContain(`listening on ${options.port}`);

  const recorded = (await readStateFile(agent.stateDir)).instances.find((i) => i.instanceId === instanceId);
  expect(recorded).toBeDefined();
  const vm = recorded?.vm ?? { driver: '', pid: 0, workDir: '' };
  expect(isRunning(vm.pid)).toBe(true);
  await expectNoProcessLeak(p, canary);

  const rm = await p.cli(['app', 'rm', app]);
  expect(rm.exitCode, rm.stderr).toBe(0);
  await p.events.waitFor(
    (e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPED,
    60_000,
    `${instanceId} STOPPED`,
  );
  expect(isRunning(vm.pid)).toBe(false);
  expect(existsSync(vm.workDir)).toBe(false);
  expect(await readdir(join(agent.stateDir, 'vms'))).toEqual([]);
  expect((await readStateFile(agent.stateDir)).instances).toEqual([]);
  // The work dir, moved aside by the agent (KEEP_VM_WORK_DIRS) for the leak search.
  const kept = (await readdir(agent.keptWorkDirs)).filter((name) => name.startsWith(`${basename(vm.workDir)}-`));
  expect(kept).toHaveLength(1);
  const keptDir = join(agent.keptWorkDirs, kept[0] ?? '');
  const keptFiles = (await readdir(keptDir, { withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(keptDir, entry.name));
  return { canary, instanceId, keptFiles, phases };
}

/**
 * While instances run: the environment and command line of every platform process (control
 * services, node agents, the VMMs or guest agents in the agents' state files, and everything
 * below them) hold no secret. Excluded: exactly each process-driver workload and what it runs,
 * because the workload's environment is where the secret is delivered (under the process driver
 * the workload is a host process below the guest agent; in a VM it is not a host process). The
 * guest agent above it is searched like every other process.
 */
export async function expectNoProcessLeak(p: NodePlatform, secrets: Secrets): Promise<void> {
  const roots = p.platformPids();
  // Each logs everything it would ever log: their lines are swept afterwards.
  for (const pid of roots) expect((await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0'), `pid ${pid}`).toContain('SHELLWEGO_LOG_LEVEL=debug');
  const workloads: number[] = [];
  for (const [key, agent] of p.agents) {
    // An agent that never recorded a VM (every boot failed) has written no state file.
    const recorded = existsSync(join(agent.stateDir, 'instances.json')) ? (await readStateFile(agent.stateDir)).instances : [];
    for (const { instanceId, vm } of recorded) {
      roots.push(vm.pid);
      if (vm.driver === 'process') workloads.push(workloadPid(p.agentProcess(key).lines, instanceId));
    }
  }
  const scan = await scanProcesses(roots, secrets, workloads);
  expect(scan.unreadable).toEqual([]);
  expect(scan.leaking).toEqual([]);
  expect(scan.scanned.length).toBeGreaterThanOrEqual(roots.length);
  // The exclusion is exact: each workload excluded does hold its secret, where it belongs.
  for (const pid of workloads) expect(leaks(await readFile(`/proc/${pid}/environ`), secrets), `workload pid ${pid}`).toBe(true);
}

/** The pid the node agent logged for the instance's workload when it last started it. */
function workloadPid(lines: readonly string[], instanceId: string): number {
  const started = new Set(['workload started', 'workload restarted with refreshed secrets']);
  const pids = lines.flatMap((line) => {
    const entry = parseLine(line);
    return entry?.instance === instanceId && started.has(String(entry.msg)) && typeof entry.pid === 'number' ? [entry.pid] : [];
  });
  const pid = pids.at(-1);
  if (pid === undefined) throw new Error(`the node agent logged no workload start for instance ${instanceId}`);
  return pid;
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * After the platform stopped: no secret is anywhere on the host outside the secrets store's
 * ciphertext: every file under the home (kept VM work dirs included; `mustRead` names files the
 * sweep must have read), every line every process printed, every CLI output, every database row.
 */
export async function expectNoLeak(p: NodePlatform, secrets: Secrets, mustRead: readonly string[] = []): Promise<void> {
  const files = await scanFiles([p.home], secrets);
  expect(files.files.length).toBeGreaterThan(20);
  expect(files.files).toEqual(expect.arrayContaining([...mustRead]));
  expect(files.leaking).toEqual([]);
  expect(files.unreadable).toEqual([]);
  expect(files.vanished).toEqual([]);
  const lines = p.allLines();
  expect(lines.length).toBeGreaterThan(50);
  expect(lines.filter((line) => leaks(line, secrets))).toEqual([]);
  expect(p.cliOutput.length).toBeGreaterThan(0);
  expect(p.cliOutput.filter((output) => leaks(output, secrets))).toEqual([]);
  const dumps = await scanDatabases(p.home, ['scheduler', 'secrets', 'registry'], secrets);
  expect(dumps.tables).toEqual(expect.arrayContaining(['secrets.secret_versions', 'scheduler.event']));
  expect(dumps.rows).toBeGreaterThan(10);
  expect(dumps.leaking).toEqual([]);
  // The detector finds what it looks for.
  for (const secret of Buffer.isBuffer(secrets) ? [secrets] : secrets) expect(leaks(`x${secret.toString('base64')}x`, secret)).toBe(true);
}

function phasesOf(p: NodePlatform, instanceId: string): Partial<Record<string, number>> {
  const events = p.events.events.filter((e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.time !== undefined);
  const at = (state: InstanceState) => {
    const e = events.find((ev) => ev.detail.case === 'instanceState' && ev.detail.value.to === state);
    return e?.time === undefined ? undefined : Number(e.time.seconds) * 1000 + e.time.nanos / 1e6;
  };
  const assigned = at(InstanceState.ASSIGNED);
  const out: Partial<Record<string, number>> = {};
  for (const state of EVERY_STATE.slice(2)) {
    const t = at(state);
    if (assigned !== undefined && t !== undefined) out[InstanceState[state] ?? String(state)] = Math.round(t - assigned);
  }
  return out;
}
