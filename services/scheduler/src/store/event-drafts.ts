// The events the scheduler records, built in one place so their messages read the same everywhere.
import { create } from '@bufbuild/protobuf';
import type { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import {
  type Event,
  InstanceHealthProbeSchema,
  InstanceStateChangedSchema,
  NodeState,
  NodeStateChangedSchema,
  PlacementDecisionSchema,
  RolloutStepSchema,
} from '@shellwego/contracts/scheduler/v1/events_pb';
import { stateName } from '../model/instance-states.js';

/** An event before it is stored: the log assigns its cursor. */
export interface EventDraft {
  readonly time: Date;
  readonly app: string;
  readonly nodeId: string;
  readonly instanceId: string;
  readonly message: string;
  readonly detail: Event['detail'];
}

export interface InstanceRef {
  readonly id: string;
  readonly app: string;
  readonly nodeId: string | undefined;
  readonly address: string;
}

export function instanceStateEvent(
  instance: InstanceRef,
  from: InstanceState,
  to: InstanceState,
  reason: string,
  exitCode: number | undefined,
  time: Date,
): EventDraft {
  const exit = exitCode === undefined ? '' : ` (exit code ${exitCode})`;
  const address = instance.address === '' ? '' : ` (${instance.address})`;
  return {
    time,
    app: instance.app,
    nodeId: instance.nodeId ?? '',
    instanceId: instance.id,
    message: `instance ${instance.id}${address} ${stateName(from)} -> ${stateName(to)}${reason ? `: ${reason}` : ''}${exit}`,
    detail: {
      case: 'instanceState',
      value: create(InstanceStateChangedSchema, { from, to, reason, address: instance.address, ...(exitCode === undefined ? {} : { exitCode }) }),
    },
  };
}

/** A RUNNING instance's health probe gave a new result (reported when its text changes). */
export function healthProbeEvent(instance: InstanceRef & { readonly state: InstanceState }, result: string, time: Date): EventDraft {
  return {
    time,
    app: instance.app,
    nodeId: instance.nodeId ?? '',
    instanceId: instance.id,
    message: `instance ${instance.id} ${stateName(instance.state)}, not healthy: ${result}`,
    detail: { case: 'healthProbe', value: create(InstanceHealthProbeSchema, { state: instance.state, result }) },
  };
}

export function placementEvent(instance: { id: string; app: string }, nodeId: string | undefined, reason: string, time: Date): EventDraft {
  return {
    time,
    app: instance.app,
    nodeId: nodeId ?? '',
    instanceId: instance.id,
    message: nodeId === undefined ? `instance ${instance.id} pending: ${reason}` : `instance ${instance.id} placed on ${nodeId}: ${reason}`,
    detail: { case: 'placement', value: create(PlacementDecisionSchema, { nodeId: nodeId ?? '', reason }) },
  };
}

export function rolloutEvent(app: string, targetVersion: number, step: string, healthy: number, desired: number, detail: string, time: Date): EventDraft {
  return {
    time,
    app,
    nodeId: '',
    instanceId: '',
    message: `app ${app} v${targetVersion}: ${step} (${healthy}/${desired} healthy)${detail ? `: ${detail}` : ''}`,
    detail: { case: 'rollout', value: create(RolloutStepSchema, { targetVersion, step, healthy, desired }) },
  };
}

export function nodeStateEvent(nodeId: string, from: NodeState, to: NodeState, reason: string, time: Date): EventDraft {
  const name = (state: NodeState) => NodeState[state] ?? String(state);
  return {
    time,
    app: '',
    nodeId,
    instanceId: '',
    message: `node ${nodeId} ${name(from)} -> ${name(to)}${reason ? `: ${reason}` : ''}`,
    detail: { case: 'nodeState', value: create(NodeStateChangedSchema, { from, to, reason }) },
  };
}

interface CapacityFigures {
  readonly cpuMillis: number;
  readonly memoryMib: number;
  readonly maxInstances: number;
}

/** A node reported more than the admin's ceiling allows; placement counts on the clamped figures. */
export function capacityClampedEvent(nodeId: string, reported: CapacityFigures, used: CapacityFigures, time: Date): EventDraft {
  const figures = (c: CapacityFigures) => `${c.cpuMillis}m CPU, ${c.memoryMib} MiB, ${c.maxInstances} instances`;
  return {
    time,
    app: '',
    nodeId,
    instanceId: '',
    message: `node ${nodeId} reported ${figures(reported)}, above the ceiling an admin set; placement counts on ${figures(used)}`,
    detail: { case: undefined },
  };
}
