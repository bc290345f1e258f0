import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';

const TERMINAL: ReadonlySet<InstanceState> = new Set([InstanceState.STOPPED, InstanceState.FAILED, InstanceState.LOST]);

/** The states a node agent may report; PENDING, ASSIGNED and LOST are the scheduler's to set. */
const NODE_REPORTED: ReadonlySet<InstanceState> = new Set([
  InstanceState.PULLING,
  InstanceState.BOOTING,
  InstanceState.STARTING,
  InstanceState.RUNNING,
  InstanceState.HEALTHY,
  InstanceState.STOPPING,
  InstanceState.STOPPED,
  InstanceState.FAILED,
]);

export const TERMINAL_STATES: readonly InstanceState[] = [...TERMINAL];

export function isTerminal(state: InstanceState): boolean {
  return TERMINAL.has(state);
}

/** "RUNNING" for InstanceState.RUNNING. */
export function stateName(state: InstanceState): string {
  return InstanceState[state] ?? `STATE_${String(state)}`;
}

/**
 * Whether a reported event is a RUNNING instance's new health probe result rather than a
 * transition: the state it already has, RUNNING (its reason is the result).
 */
export function isProbeResult(from: InstanceState, to: InstanceState): boolean {
  return from === InstanceState.RUNNING && to === InstanceState.RUNNING;
}

/**
 * Why a state a node reports cannot follow the one the scheduler holds, or
 * undefined when it can. Lifecycle states only move forward (skipping is
 * fine: a fast boot may not report every step); the one way back is
 * HEALTHY -> RUNNING, a health check failing again. A terminal state is final.
 */
export function refuseReportedTransition(from: InstanceState, to: InstanceState): string | undefined {
  if (!NODE_REPORTED.has(to)) return `a node may not report ${stateName(to)}`;
  if (isTerminal(from)) return `the instance is already ${stateName(from)}`;
  if (to === from) return `the instance is already ${stateName(from)}`;
  if (isTerminal(to)) return undefined;
  if (from === InstanceState.HEALTHY && to === InstanceState.RUNNING) return undefined;
  if (to < from) return `${stateName(to)} cannot follow ${stateName(from)}`;
  return undefined;
}
