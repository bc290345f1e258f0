// The end-to-end secret path, shared by the process-driver and the real-VM tests: an app image
// built here is imported, a random CANARY secret set, the app deployed with it through the CLI;
// the instance must pass through every state to HEALTHY and print the canary's sha256, read back
// through the node agent; `app rm` must stop it and leave no per-instance file. Then every file,
// log line and database row is searched for the plaintext.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { InstanceState } from '../../../gen/shellwego/common/v1/workload_pb.js';
import { isRunning } from '../../../services/node-agent/src/drivers/proc-identity.js';
import { canaryImageArchive, canaryLine } from './canary-image.js';
import { instanceReached, logsUntil, statesOf } from './instance-watch.js';
import { scanDatabases, scanFiles, leaks } from './leak-scan.js';
import { readStateFile, type NodePlatform } from './node-platform.js';

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
    'app', 'deploy', app, '--image', tag, '--secret', 'CANARY', '--env', `PORT=${options.port}`, '--health', `tcp:${options.port}`,
    '--memory', options.memory, '--cpu', '250m', '--label', `role=${options.agentKey}`,
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
  const vm = recorded?.vm ?? { pid: 0, workDir: '' };
  expect(isRunning(vm.pid)).toBe(true);

  const rm = await p.cli(['app', 'rm', app]);
  expect(rm.exitCode, rm.stderr).toBe(0);
  await p.events.waitFor((e) => e.instanceId === instanceId && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.STOPPED, 60_000, `${instanceId} STOPPED`);
  expect(isRunning(vm.pid)).toBe(false);
  expect(existsSync(vm.workDir)).toBe(false);
  expect(await readdir(join(agent.stateDir, 'vms'))).toEqual([]);
  expect((await readStateFile(agent.stateDir)).instances).toEqual([]);
  return { canary, instanceId, phases };
}

/** After the platform stopped: the canary is nowhere on the host outside the secrets store's ciphertext. */
export async function expectNoLeak(p: NodePlatform, canary: Buffer, extraDirs: readonly string[] = []): Promise<void> {
  const files = await scanFiles([p.home, ...extraDirs], canary);
  expect(files.files).toBeGreaterThan(20);
  expect(files.leaking).toEqual([]);
  const lines = p.allLines();
  expect(lines.length).toBeGreaterThan(50);
  expect(lines.filter((line) => leaks(line, canary))).toEqual([]);
  const dumps = await scanDatabases(p.home, ['scheduler', 'secrets', 'registry'], canary);
  expect(dumps.tables).toEqual(expect.arrayContaining(['secrets.secret_versions', 'scheduler.event']));
  expect(dumps.rows).toBeGreaterThan(10);
  expect(dumps.leaking).toEqual([]);
  // The detector finds what it looks for.
  expect(leaks(`x${canary.toString('base64')}x`, canary)).toBe(true);
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
