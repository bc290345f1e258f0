// Node state changes on the active scheduler: a Hello (join, return after
// DOWN, reconcile of what the node runs), DOWN after silence, cordon/drain.
import { isIPv4 } from 'node:net';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Hello } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { MAX_INT32 } from '../api/app-spec.js';
import { engineState, type NodeRecord, nodeLabels, nodeProtoState } from '../leader/cluster-state.js';
import type { LeaderContext } from '../leader/leader-context.js';
import { refuseReportedTransition } from '../model/instance-states.js';
import { labelProblems } from '../model/labels.js';
import type { Changes } from '../store/changes.js';
import { capacityClampedEvent, nodeStateEvent } from '../store/event-drafts.js';
import type { AdminState, CapacityCeiling } from '../store/tables.js';
import { changeState, sendAssign, sendStop } from './instance-lifecycle.js';

/** Problems with a Hello, each naming its field; empty when it is fine. */
export function helloProblems(hello: Hello): string[] {
  const problems: string[] = [];
  const capacity = hello.capacity;
  if (capacity === undefined) problems.push('hello.capacity: required (cpu_millis, memory_mib, max_instances)');
  else {
    for (const [field, value] of [
      ['cpu_millis', capacity.cpuMillis],
      ['memory_mib', capacity.memoryMib],
      ['max_instances', capacity.maxInstances],
    ] as const) {
      if (value > MAX_INT32) problems.push(`hello.capacity.${field}: must be at most ${MAX_INT32}, got ${value}`);
    }
  }
  problems.push(...labelProblems(hello.labels, 'hello.labels'));
  if (hello.hostname.length > 253) problems.push('hello.hostname: at most 253 characters');
  const seen = new Set<string>();
  for (const running of hello.running) {
    if (seen.has(running.instanceId)) problems.push(`hello.running: instance ${running.instanceId} is listed twice`);
    if (running.address !== '' && !isIPv4(running.address)) {
      problems.push(
        `hello.running: instance ${running.instanceId} has address ${JSON.stringify(running.address.slice(0, 64))}, not a dotted-quad IPv4 address`,
      );
    }
    seen.add(running.instanceId);
  }
  return problems;
}

/** A node with a brand-new record: joined without the database knowing it (a CA-issued node certificate). */
export function newNodeRecord(id: string, now: Date): NodeRecord {
  return {
    id,
    hostname: '',
    joinLabels: {},
    reportedLabels: {},
    capacity: { cpuMillis: 0, memoryMib: 0, maxInstances: 0 },
    reportedCapacity: { cpuMillis: 0, memoryMib: 0, maxInstances: 0 },
    capacityCeiling: null,
    adminState: 'READY',
    down: false,
    reported: false,
    driver: '',
    joinedAt: now,
    lastSeenMs: now.getTime(),
    lastHeartbeat: null,
    heartbeatDirty: false,
  };
}

/**
 * Takes what a node says at the start of a session: its capacity and labels,
 * and the instances it runs. Unknown or foreign instances are stopped,
 * instances it should run but does not mention are assigned again.
 */
export function acceptHello(ctx: LeaderContext, changes: Changes, node: NodeRecord, hello: Hello): void {
  const before = nodeProtoState(node);
  const wasDown = node.down;
  node.hostname = hello.hostname || node.hostname;
  node.reportedLabels = { ...hello.labels };
  const reportedCapacity = {
    cpuMillis: hello.capacity?.cpuMillis ?? 0,
    memoryMib: hello.capacity?.memoryMib ?? 0,
    maxInstances: hello.capacity?.maxInstances ?? 0,
  };
  node.reportedCapacity = reportedCapacity;
  applyCeiling(ctx, changes, node);
  node.driver = hello.driver;
  node.reported = true;
  node.down = false;
  node.lastSeenMs = changes.now.getTime();
  node.lastHeartbeat = changes.now;
  ctx.state.engine.upsertNode({ id: node.id, state: engineState(node), labels: nodeLabels(node), capacity: node.capacity });
  changes.node(node);
  const after = nodeProtoState(node);
  if (before !== after) {
    changes.event(nodeStateEvent(node.id, before, after, wasDown ? 'the node is back' : 'first session', changes.now));
  }

  const reported = new Set<string>();
  for (const running of hello.running) {
    reported.add(running.instanceId);
    const instance = ctx.state.instance(running.instanceId);
    if (instance === undefined || instance.nodeId !== node.id) {
      const why =
        instance === undefined ? 'it is not a live instance (stale after the node was DOWN, or unknown)' : `it belongs on ${instance.nodeId ?? 'no node yet'}`;
      ctx.logger.info({ node: node.id, instance: running.instanceId }, `stopping an instance the node reported: ${why}`);
      sendStop(ctx, changes, node.id, running.instanceId, `not expected on node ${node.id}: ${why}`);
      continue;
    }
    if (instance.state === InstanceState.STOPPING) {
      sendStop(ctx, changes, node.id, instance.id, instance.reason);
      continue;
    }
    const addressChanged = instance.address !== running.address;
    instance.address = running.address;
    if (refuseReportedTransition(instance.state, running.state) === undefined) {
      changeState(ctx, changes, instance, running.state, 'reported at session start');
    } else if (addressChanged) {
      changes.instance(instance);
    }
  }
  for (const instance of [...ctx.state.instancesOn(node.id)]) {
    if (reported.has(instance.id)) continue;
    if (instance.state === InstanceState.STOPPING) {
      changeState(ctx, changes, instance, InstanceState.STOPPED, 'the node no longer runs it');
      continue;
    }
    if (instance.state !== InstanceState.ASSIGNED) {
      changeState(ctx, changes, instance, InstanceState.ASSIGNED, 'assigned again: the node did not report it at session start');
    }
    sendAssign(ctx, changes, instance);
  }
}

type Capacity = NodeRecord['capacity'];

/** Placement counts on the node's report clamped to its ceiling; an event says when the report was above it. */
export function applyCeiling(ctx: LeaderContext, changes: Changes, node: NodeRecord): void {
  node.capacity = clampCapacity(node.reportedCapacity, node.capacityCeiling);
  if (!sameCapacity(node.capacity, node.reportedCapacity)) {
    ctx.logger.warn({ node: node.id, reported: node.reportedCapacity, ceiling: node.capacityCeiling }, 'node reported capacity above its ceiling; clamped');
    changes.event(capacityClampedEvent(node.id, node.reportedCapacity, node.capacity, changes.now));
  }
}

/** Each resource bounded by the admin's ceiling (0 in the ceiling: that one unbounded). */
export function clampCapacity(reported: Capacity, ceiling: CapacityCeiling | null): Capacity {
  if (ceiling === null) return reported;
  const bound = (value: number, limit: number) => (limit === 0 ? value : Math.min(value, limit));
  return {
    cpuMillis: bound(reported.cpuMillis, ceiling.cpuMillis),
    memoryMib: bound(reported.memoryMib, ceiling.memoryMib),
    maxInstances: bound(reported.maxInstances, ceiling.maxInstances),
  };
}

function sameCapacity(a: Capacity, b: Capacity): boolean {
  return a.cpuMillis === b.cpuMillis && a.memoryMib === b.memoryMib && a.maxInstances === b.maxInstances;
}

/** Marks a silent node DOWN; its instances are LOST (and get replaced by the reconciler). */
export function markDown(ctx: LeaderContext, changes: Changes, node: NodeRecord, reason: string): void {
  const before = nodeProtoState(node);
  node.down = true;
  if (node.reported) ctx.state.engine.setNodeState(node.id, 'DOWN');
  changes.node(node);
  changes.event(nodeStateEvent(node.id, before, nodeProtoState(node), reason, changes.now));
  for (const instance of [...ctx.state.instancesOn(node.id)]) {
    if (instance.state === InstanceState.STOPPING) {
      changeState(ctx, changes, instance, InstanceState.STOPPED, `node ${node.id} went down while it was stopping`);
    } else {
      changeState(ctx, changes, instance, InstanceState.LOST, `node ${node.id} went down: ${reason}`);
    }
  }
}

export function setAdminState(ctx: LeaderContext, changes: Changes, node: NodeRecord, state: AdminState, reason: string): void {
  if (node.adminState === state) return;
  const before = nodeProtoState(node);
  node.adminState = state;
  if (node.reported) ctx.state.engine.setNodeState(node.id, engineState(node));
  changes.node(node);
  const after = nodeProtoState(node);
  if (before !== after) changes.event(nodeStateEvent(node.id, before, after, reason, changes.now));
}
