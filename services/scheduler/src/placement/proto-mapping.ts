import { PlacementStrategy as ProtoPlacementStrategy } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState as ProtoNodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { PlacementError } from './errors.js';
import type { NodeState, PlacementStrategy } from './types.js';

const TO_PROTO: Readonly<Record<NodeState, ProtoNodeState>> = {
  READY: ProtoNodeState.READY,
  CORDONED: ProtoNodeState.CORDONED,
  DRAINING: ProtoNodeState.DRAINING,
  DOWN: ProtoNodeState.DOWN,
};

export function nodeStateToProto(state: NodeState): ProtoNodeState {
  return TO_PROTO[state];
}

/** UNSPECIFIED ("never reported") has no engine state: the caller decides what such a node is. */
export function nodeStateFromProto(state: ProtoNodeState): NodeState {
  switch (state) {
    case ProtoNodeState.READY:
      return 'READY';
    case ProtoNodeState.CORDONED:
      return 'CORDONED';
    case ProtoNodeState.DRAINING:
      return 'DRAINING';
    case ProtoNodeState.DOWN:
      return 'DOWN';
    default:
      throw new PlacementError('invalid-argument', `node state ${ProtoNodeState[state] ?? String(state)} is not one of READY, CORDONED, DRAINING, DOWN`);
  }
}

/** UNSPECIFIED means the default, bin-pack. */
export function strategyFromProto(strategy: ProtoPlacementStrategy): PlacementStrategy {
  switch (strategy) {
    case ProtoPlacementStrategy.UNSPECIFIED:
    case ProtoPlacementStrategy.BINPACK:
      return 'binpack';
    case ProtoPlacementStrategy.SPREAD:
      return 'spread';
    default:
      throw new PlacementError('invalid-argument', `placement.strategy ${String(strategy)} is not a known strategy`);
  }
}
