// Creating, moving and stopping instances: every change is recorded in a
// Changes unit with its event, and node messages go out only after commit.
import { randomBytes } from 'node:crypto';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { assignMessage, stopMessage } from '../leader/assignment.js';
import type { AppRecord, InstanceRecord, VersionRecord } from '../leader/cluster-state.js';
import type { LeaderContext } from '../leader/leader-context.js';
import { isTerminal } from '../model/instance-states.js';
import type { Changes } from '../store/changes.js';
import { healthProbeEvent, instanceStateEvent, placementEvent } from '../store/event-drafts.js';

const MAX_RESTART_BACKOFF_MS = 60_000;

export function createInstance(ctx: LeaderContext, changes: Changes, app: AppRecord, version: VersionRecord): InstanceRecord {
  const resources = version.spec.resources;
  const instance: InstanceRecord = {
    id: `${app.name}-${version.version}-${randomBytes(4).toString('hex')}`,
    app: app.name,
    version: version.version,
    nodeId: undefined,
    state: InstanceState.PENDING,
    reason: 'waiting for placement',
    exitCode: undefined,
    address: '',
    resources: { cpuMillis: resources?.cpuMillis ?? 0, memoryMib: resources?.memoryMib ?? 0 },
    createdAt: changes.now,
    updatedAt: changes.now,
    healthySince: undefined,
  };
  ctx.state.addLive(instance);
  changes.instance(instance);
  changes.event(
    instanceStateEvent(instance, InstanceState.UNSPECIFIED, InstanceState.PENDING, `created for version ${version.version}`, undefined, changes.now),
  );
  return instance;
}

/** Records a state change and its event; a terminal state frees the instance's reservation. */
export function changeState(
  ctx: LeaderContext,
  changes: Changes,
  instance: InstanceRecord,
  to: InstanceState,
  reason: string,
  exitCode?: number,
  time: Date = changes.now,
): void {
  const from = instance.state;
  instance.state = to;
  instance.reason = reason;
  if (exitCode !== undefined) instance.exitCode = exitCode;
  // An ended instance's address is the node's to give to another.
  if (isTerminal(to)) instance.address = '';
  instance.updatedAt = changes.now;
  if (to !== InstanceState.HEALTHY) instance.healthySince = undefined;
  else if (from !== InstanceState.HEALTHY) instance.healthySince = changes.now;
  changes.instance(instance);
  changes.event(instanceStateEvent(instance, from, to, reason, exitCode, time));
  if (isTerminal(to)) ctx.state.removeLive(instance);
  const app = ctx.state.apps.get(instance.app);
  if (app === undefined) return;
  if (to === InstanceState.HEALTHY) app.restartFailures = 0;
  // An instance failing while it was being stopped is not a workload failure.
  if (to === InstanceState.FAILED && from !== InstanceState.STOPPING) noteFailure(app, instance, reason, changes.now);
}

/** A RUNNING instance's latest health probe result becomes its reason, with an event; no state change. */
export function noteProbeResult(changes: Changes, instance: InstanceRecord, result: string): void {
  instance.reason = result;
  changes.instance(instance);
  changes.event(healthProbeEvent(instance, result, changes.now));
}

function noteFailure(app: AppRecord, instance: InstanceRecord, reason: string, now: Date): void {
  const deployment = app.deployment;
  if (
    deployment.state === DeploymentState.IN_PROGRESS &&
    instance.version === deployment.targetVersion &&
    deployment.fromVersion !== deployment.targetVersion
  ) {
    app.rolloutFailure ??= `instance ${instance.id} failed: ${reason}`;
    return;
  }
  app.restartFailures++;
  app.restartNotBeforeMs = now.getTime() + Math.min(MAX_RESTART_BACKOFF_MS, 1000 * 2 ** (app.restartFailures - 1));
}

/** Puts a PENDING instance on `nodeId` (already reserved in the engine) and sends the assignment. */
export function placeOn(ctx: LeaderContext, changes: Changes, instance: InstanceRecord, nodeId: string): void {
  ctx.state.setNode(instance, nodeId);
  changes.event(placementEvent(instance, nodeId, placementReason(ctx, nodeId), changes.now));
  changeState(ctx, changes, instance, InstanceState.ASSIGNED, `placed on ${nodeId}`);
  sendAssign(ctx, changes, instance);
}

function placementReason(ctx: LeaderContext, nodeId: string): string {
  const node = ctx.state.engine.getNode(nodeId);
  if (node === undefined) return 'chosen';
  const freeCpu = node.capacity.cpuMillis - node.allocated.cpuMillis;
  const freeMemory = node.capacity.memoryMib - node.allocated.memoryMib;
  return `fits, leaving ${freeCpu} millicores and ${freeMemory} MiB free`;
}

/**
 * Queues the Assign for an instance's node; it is built (and its grants
 * signed) only when sent. An app taking every workspace secret has their
 * names asked first; when they cannot be had the assignment fails.
 */
export function sendAssign(ctx: LeaderContext, changes: Changes, instance: InstanceRecord): void {
  const nodeId = instance.nodeId;
  if (nodeId === undefined) return;
  const workspaceSecrets = ctx.state.apps.get(instance.app)?.versions.get(instance.version)?.spec.allWorkspaceSecrets === true;
  changes.send(
    nodeId,
    (issue) => {
      const current = ctx.state.instance(instance.id);
      // Stopped or moved meanwhile: the assignment is stale.
      if (current === undefined || current.nodeId !== nodeId || current.state === InstanceState.STOPPING) return undefined;
      const version = ctx.state.apps.get(current.app)?.versions.get(current.version);
      return version === undefined ? undefined : assignMessage(current, version, nodeId, ctx.grants, issue);
    },
    { workspaceSecrets, unsent: (reason) => ctx.failUnsentAssignment(instance.id, nodeId, reason) },
  );
}

/** Stops an instance: a PENDING one at once, a placed one by telling its node. */
export function requestStop(ctx: LeaderContext, changes: Changes, instance: InstanceRecord, reason: string): void {
  if (instance.nodeId === undefined || instance.state === InstanceState.PENDING) {
    changeState(ctx, changes, instance, InstanceState.STOPPED, reason);
    return;
  }
  if (instance.state === InstanceState.STOPPING) return;
  changeState(ctx, changes, instance, InstanceState.STOPPING, reason);
  sendStop(ctx, changes, instance.nodeId, instance.id, reason);
}

export function sendStop(ctx: LeaderContext, changes: Changes, nodeId: string, instanceId: string, reason: string): void {
  changes.send(nodeId, () => stopMessage(instanceId, ctx.stopGraceMs, reason));
}
