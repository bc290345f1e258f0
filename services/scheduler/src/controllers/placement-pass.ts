import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { InstanceRecord } from '../leader/cluster-state.js';
import type { LeaderContext } from '../leader/leader-context.js';
import { type Pending, PlacementError, type PlacementRequest, strategyFromProto } from '../placement/index.js';
import type { Changes } from '../store/changes.js';
import { placementEvent } from '../store/event-drafts.js';
import { placeOn } from './instance-lifecycle.js';

/**
 * Places every PENDING instance, oldest first. One that does not fit keeps
 * PENDING with the engine's reason; a placement event is recorded only when
 * that reason changes, so retries after every cluster change stay quiet.
 * Capacity only shrinks during a pass, so once a request shape found no node,
 * later instances of the same shape are not searched again.
 */
export function placePending(ctx: LeaderContext, changes: Changes): void {
  const pending: InstanceRecord[] = [];
  for (const instance of ctx.state.liveInstances()) {
    if (instance.state === InstanceState.PENDING) pending.push(instance);
  }
  if (pending.length === 0) return;
  pending.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1));
  const unplaceable = new Map<string, Pending>();
  for (const instance of pending) {
    const version = ctx.state.apps.get(instance.app)?.versions.get(instance.version);
    if (version === undefined) continue;
    const placement = version.spec.placement;
    const request: PlacementRequest = {
      instanceId: instance.id,
      app: instance.app,
      resources: instance.resources,
      requiredLabels: placement?.requiredLabels ?? {},
      strategy: strategyFromProto(placement?.strategy ?? 0),
    };
    const shape = shapeOf(request);
    let why = unplaceable.get(shape);
    if (why === undefined) {
      try {
        const result = ctx.state.engine.place(request);
        if (result.nodeId !== undefined) {
          placeOn(ctx, changes, instance, result.nodeId);
          instance.pendingConstraint = undefined;
          ctx.metrics.placements.inc({ outcome: 'placed', constraint: 'none' });
          continue;
        }
        why = result.pending;
      } catch (error) {
        if (!(error instanceof PlacementError)) throw error;
        why = { constraint: 'no-nodes', reason: error.message };
      }
      unplaceable.set(shape, why);
    }
    if (instance.pendingConstraint !== why.constraint) ctx.metrics.placements.inc({ outcome: 'pending', constraint: why.constraint });
    instance.pendingConstraint = why.constraint;
    if (instance.reason !== why.reason) {
      instance.reason = why.reason;
      instance.updatedAt = changes.now;
      changes.instance(instance);
      changes.event(placementEvent(instance, undefined, why.reason, changes.now));
    }
  }
}

function shapeOf(request: PlacementRequest): string {
  const labels = Object.entries(request.requiredLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return `${request.resources.cpuMillis}/${request.resources.memoryMib}/${JSON.stringify(labels)}`;
}
