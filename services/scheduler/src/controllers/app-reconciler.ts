// Keeps each app's live instances equal to its per-version targets: missing
// ones are created PENDING (placement picks them up), extra ones stopped, and
// instances on a draining node replaced before they are stopped.
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { AppRecord, InstanceRecord } from '../leader/cluster-state.js';
import type { LeaderContext } from '../leader/leader-context.js';
import type { Changes } from '../store/changes.js';
import { createInstance, requestStop } from './instance-lifecycle.js';

export function reconcileApp(ctx: LeaderContext, changes: Changes, app: AppRecord, nowMs: number): void {
  const active = new Map<number, InstanceRecord[]>();
  const draining: InstanceRecord[] = [];
  for (const instance of ctx.state.instancesOf(app.name)) {
    if (instance.state === InstanceState.STOPPING) continue;
    const node = instance.nodeId === undefined ? undefined : ctx.state.nodes.get(instance.nodeId);
    if (node !== undefined && node.adminState === 'DRAINING' && !node.down) draining.push(instance);
    else push(active, instance.version, instance);
  }
  const versions = new Set([...app.desired.keys(), ...active.keys()]);
  for (const version of versions) {
    const wanted = app.deletedAt === null ? (app.desired.get(version) ?? 0) : 0;
    const have = active.get(version) ?? [];
    if (have.length < wanted) {
      const record = app.versions.get(version);
      if (record === undefined || nowMs < app.restartNotBeforeMs) continue;
      for (let i = have.length; i < wanted; i++) push(active, version, createInstance(ctx, changes, app, record));
    } else if (have.length > wanted) {
      const reason =
        app.deletedAt !== null ? 'app deleted' : wanted === 0 ? `version ${version} is no longer wanted` : `app scaled to ${wanted} of version ${version}`;
      for (const instance of [...have].sort(stopOrder).slice(0, have.length - wanted)) requestStop(ctx, changes, instance, reason);
    }
  }
  if (draining.length > 0) drainInstances(ctx, changes, app, draining, active, nowMs);
}

/**
 * Stops instances on draining nodes once their replacements (created above,
 * as the draining ones do not count) keep enough of the version HEALTHY: the
 * same gate as a rollout, replicas - max_unavailable.
 */
function drainInstances(
  ctx: LeaderContext,
  changes: Changes,
  app: AppRecord,
  draining: InstanceRecord[],
  active: Map<number, InstanceRecord[]>,
  nowMs: number,
): void {
  const limits = app.versions.get(app.currentVersion)?.limits;
  const minHealthyMs = limits?.minHealthyMs ?? 0;
  const maxUnavailable = limits?.maxUnavailable ?? 0;
  for (const instance of [...draining].sort(stopOrder)) {
    const wanted = app.deletedAt === null ? (app.desired.get(instance.version) ?? 0) : 0;
    if (instance.state !== InstanceState.HEALTHY || wanted === 0) {
      requestStop(ctx, changes, instance, `node ${instance.nodeId ?? ''} is draining`);
      continue;
    }
    const replacements = (active.get(instance.version) ?? []).filter(
      (i) => i.state === InstanceState.HEALTHY && i.healthySince !== undefined && nowMs - i.healthySince.getTime() >= minHealthyMs,
    ).length;
    const stillHealthy = draining.filter((i) => i.version === instance.version && i.state === InstanceState.HEALTHY).length;
    if (replacements + stillHealthy - 1 >= wanted - maxUnavailable) {
      requestStop(ctx, changes, instance, `node ${instance.nodeId ?? ''} is draining; a replacement is healthy`);
    }
  }
}

/** Which instances to stop first: the least far along (PENDING before HEALTHY), then the newest. */
function stopOrder(a: InstanceRecord, b: InstanceRecord): number {
  return a.state - b.state || b.createdAt.getTime() - a.createdAt.getTime();
}

function push(index: Map<number, InstanceRecord[]>, key: number, value: InstanceRecord): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [value]);
  else list.push(value);
}
