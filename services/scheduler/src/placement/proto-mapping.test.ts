import { PlacementStrategy as ProtoPlacementStrategy } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState as ProtoNodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { describe, expect, it } from 'vitest';
import { PlacementError } from './errors.js';
import { nodeStateFromProto, nodeStateToProto, strategyFromProto } from './proto-mapping.js';
import type { NodeState } from './types.js';

describe('proto mapping', () => {
  it('maps every engine node state to the contract and back', () => {
    const states: NodeState[] = ['READY', 'CORDONED', 'DRAINING', 'DOWN'];
    expect(states.map(nodeStateToProto)).toEqual([ProtoNodeState.READY, ProtoNodeState.CORDONED, ProtoNodeState.DRAINING, ProtoNodeState.DOWN]);
    for (const state of states) expect(nodeStateFromProto(nodeStateToProto(state))).toBe(state);
  });

  it('refuses UNSPECIFIED node state as invalid input', () => {
    expect(() => nodeStateFromProto(ProtoNodeState.UNSPECIFIED)).toThrow(PlacementError);
    expect(() => nodeStateFromProto(ProtoNodeState.UNSPECIFIED)).toThrow(/node state UNSPECIFIED is not one of/);
  });

  it('treats an unspecified strategy as bin-pack', () => {
    expect(strategyFromProto(ProtoPlacementStrategy.UNSPECIFIED)).toBe('binpack');
    expect(strategyFromProto(ProtoPlacementStrategy.BINPACK)).toBe('binpack');
    expect(strategyFromProto(ProtoPlacementStrategy.SPREAD)).toBe('spread');
    expect(() => strategyFromProto(9 as ProtoPlacementStrategy)).toThrow(/placement\.strategy 9 is not a known strategy/);
  });
});
