// Rolling updates: the controller moves an app's per-version instance
// targets (AppRecord.desired) from the old versions to the new one, never
// letting HEALTHY instances drop below replicas - max_unavailable; the
// reconciler then starts and stops instances to match the targets.
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { AppRecord, InstanceRecord } from '../leader/cluster-state.js';
import type { LeaderContext } from '../leader/leader-context.js';
import type { Changes } from '../store/changes.js';
import { rolloutEvent } from '../store/event-drafts.js';
import { requestStop } from './instance-lifecycle.js';

/** Begins rolling `app` to `targetVersion` from whatever it runs now. */
export function startRollout(changes: Changes, app: AppRecord, targetVersion: number): void {
  const fromVersion = app.currentVersion;
  app.currentVersion = targetVersion;
  app.rolloutFailure = undefined;
  app.deployment = {
    targetVersion,
    fromVersion,
    state: DeploymentState.IN_PROGRESS,
    healthy: 0,
    desired: app.replicas,
    reason: '',
    startedAt: changes.now,
    finishedAt: null,
  };
  if (!app.desired.has(targetVersion)) app.desired.set(targetVersion, 0);
  changes.app(app);
  const from = fromVersion === 0 ? '' : `replacing v${fromVersion}`;
  changes.event(rolloutEvent(app.name, targetVersion, 'started', 0, app.replicas, from, changes.now));
}

/** One step of the rollout in progress, if any. */
export function stepRollout(ctx: LeaderContext, changes: Changes, app: AppRecord, nowMs: number): void {
  const deployment = app.deployment;
  if (deployment.state !== DeploymentState.IN_PROGRESS || app.deletedAt !== null) return;
  const target = app.versions.get(deployment.targetVersion);
  if (target === undefined) return;
  const limits = target.limits;
  const replicas = app.replicas;
  const fresh: InstanceRecord[] = [];
  const old: InstanceRecord[] = [];
  for (const instance of ctx.state.instancesOf(app.name)) {
    if (instance.state === InstanceState.STOPPING) continue;
    (instance.version === deployment.targetVersion ? fresh : old).push(instance);
  }

  const failure = app.rolloutFailure ?? missedDeadline(fresh, limits.healthDeadlineMs, nowMs);
  if (failure !== undefined) {
    failRollout(changes, app, failure, fresh);
    return;
  }

  const counted = fresh.filter((i) => healthyFor(i, limits.minHealthyMs, nowMs)).length;
  // Old instances lost during the rollout are not replaced: new ones take their place.
  const oldByVersion = countByVersion(old);
  for (const [version, wanted] of app.desired) {
    if (version === deployment.targetVersion) continue;
    const keep = Math.min(wanted, oldByVersion.get(version) ?? 0);
    if (keep !== wanted) setDesired(changes, app, version, keep);
  }

  // Unhealthy old instances protect nothing: stop them first. Healthy ones
  // only while HEALTHY old + counted new stays at or above replicas - max_unavailable.
  let budget = old.filter((i) => i.state === InstanceState.HEALTHY).length + counted - Math.max(0, replicas - limits.maxUnavailable);
  const candidates = [...old].sort((a, b) => Number(a.state === InstanceState.HEALTHY) - Number(b.state === InstanceState.HEALTHY) || a.version - b.version);
  let stopped = 0;
  for (const instance of candidates) {
    if (instance.state === InstanceState.HEALTHY) {
      if (budget <= 0) break;
      budget--;
    }
    requestStop(ctx, changes, instance, `replaced by version ${deployment.targetVersion}`);
    setDesired(changes, app, instance.version, Math.max(0, (app.desired.get(instance.version) ?? 0) - 1));
    stopped++;
  }
  if (stopped > 0) {
    changes.event(rolloutEvent(app.name, deployment.targetVersion, 'stopped-old', counted, replicas, `${stopped} old instance(s) stopped`, changes.now));
  }

  let oldWanted = 0;
  for (const [version, wanted] of app.desired) if (version !== deployment.targetVersion) oldWanted += wanted;
  const current = Math.min(app.desired.get(deployment.targetVersion) ?? 0, replicas);
  const wantedNew = Math.min(replicas, Math.max(current, replicas + limits.maxSurge - oldWanted));
  if (wantedNew !== app.desired.get(deployment.targetVersion)) {
    setDesired(changes, app, deployment.targetVersion, wantedNew);
    if (wantedNew > current) {
      changes.event(
        rolloutEvent(app.name, deployment.targetVersion, 'surge', counted, replicas, `${wantedNew} of ${replicas} new instance(s) wanted`, changes.now),
      );
    }
  }

  if (oldWanted === 0 && old.length === 0 && counted >= replicas) {
    succeed(changes, app, counted);
    return;
  }
  if (deployment.healthy !== counted || deployment.desired !== replicas) {
    deployment.healthy = counted;
    deployment.desired = replicas;
    changes.app(app);
  }
}

function missedDeadline(fresh: readonly InstanceRecord[], deadlineMs: number, nowMs: number): string | undefined {
  const late = fresh.find((i) => i.state !== InstanceState.HEALTHY && nowMs - i.createdAt.getTime() >= deadlineMs);
  return late === undefined ? undefined : `instance ${late.id} did not become HEALTHY within ${deadlineMs / 1000} s (it is ${InstanceState[late.state]})`;
}

function healthyFor(instance: InstanceRecord, minHealthyMs: number, nowMs: number): boolean {
  return instance.state === InstanceState.HEALTHY && instance.healthySince !== undefined && nowMs - instance.healthySince.getTime() >= minHealthyMs;
}

function countByVersion(instances: readonly InstanceRecord[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const instance of instances) counts.set(instance.version, (counts.get(instance.version) ?? 0) + 1);
  return counts;
}

function setDesired(changes: Changes, app: AppRecord, version: number, count: number): void {
  if (count === 0 && version !== app.currentVersion) app.desired.delete(version);
  else app.desired.set(version, count);
  changes.app(app);
}

function succeed(changes: Changes, app: AppRecord, healthy: number): void {
  const deployment = app.deployment;
  deployment.state = DeploymentState.SUCCEEDED;
  deployment.healthy = healthy;
  deployment.desired = app.replicas;
  deployment.finishedAt = changes.now;
  app.desired = new Map([[deployment.targetVersion, app.replicas]]);
  const version = app.versions.get(deployment.targetVersion);
  if (version !== undefined) {
    version.healthyAt = changes.now;
    changes.versionHealthy(app.name, version);
  }
  changes.app(app);
  changes.event(rolloutEvent(app.name, deployment.targetVersion, 'succeeded', healthy, app.replicas, '', changes.now));
}

/**
 * Stops the rollout. With auto-rollback the previous version becomes
 * current again and gets all replicas back; without it the rollout stays
 * where it stopped, keeping only the new instances that are HEALTHY.
 */
function failRollout(changes: Changes, app: AppRecord, reason: string, fresh: readonly InstanceRecord[]): void {
  const deployment = app.deployment;
  const target = app.versions.get(deployment.targetVersion);
  const healthy = fresh.filter((i) => i.state === InstanceState.HEALTHY).length;
  deployment.state = DeploymentState.FAILED;
  deployment.reason = reason;
  deployment.healthy = healthy;
  deployment.finishedAt = changes.now;
  app.rolloutFailure = undefined;
  changes.app(app);
  changes.event(rolloutEvent(app.name, deployment.targetVersion, 'failed', healthy, app.replicas, reason, changes.now));
  const from = deployment.fromVersion;
  if (target?.limits.autoRollback === true && from > 0 && from !== deployment.targetVersion && app.versions.has(from)) {
    app.currentVersion = from;
    app.desired = new Map([[from, app.replicas]]);
    deployment.state = DeploymentState.ROLLED_BACK;
    changes.event(rolloutEvent(app.name, deployment.targetVersion, 'rolled-back', healthy, app.replicas, `version ${from} restored`, changes.now));
    return;
  }
  setDesired(changes, app, deployment.targetVersion, healthy);
}
