// An instance's life on this node, declared once: every phase it can be in, the contract state
// (workload.proto InstanceState) each phase presents to the scheduler, and the transitions
// allowed between them. InstanceLifecycle holds one instance's phase: it refuses an undeclared
// transition (logs and throws), and reports a change of the contract state from the transition
// itself, so the scheduler hears every change exactly once and in order. Within RUNNING it also
// reports a new reason (the latest health probe result) when its text changes, never a repeat.
//
//   ASSIGNED -> PULLING -> BOOTING -> STARTING -> RUNNING <-> HEALTHY
//   RUNNING | HEALTHY -> RESTARTING -> RUNNING            (secret refresh restarts the workload)
//   ADOPTING -> RUNNING | HEALTHY                          (after an agent restart)
//   PULLING..RESTARTING -> STOPPING -> STOPPED             (stop order)
//   PULLING..RESTARTING, ADOPTING -> FAILING -> FAILED     (a start step, the VM or the workload failed)
//   PULLING..RESTARTING, STOPPING, FAILING -> DETACHED     (agent shutdown; the VM keeps running)
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Logger } from '@shellwego/kit/log';
import type { InstanceEventInit } from '../session/scheduler-session.js';

export type InstancePhase =
  // The contract's states, as this node goes through them (PENDING and LOST are the scheduler's).
  | 'ASSIGNED'
  | 'PULLING'
  | 'BOOTING'
  | 'STARTING'
  | 'RUNNING'
  | 'HEALTHY'
  | 'STOPPING'
  | 'STOPPED'
  | 'FAILED'
  // The agent's own phases. Never reported: the instance keeps presenting the state it had.
  /** Re-attached to a VM an earlier agent process booted; resumes into the persisted state or fails. */
  | 'ADOPTING'
  /** InjectSecrets replaces the workload: its exit and failing health checks are expected, not failures. */
  | 'RESTARTING'
  /** The VM is being powered off and the instance's files removed before FAILED is reported. */
  | 'FAILING'
  /** The agent shut down and left the VM running for the next agent process, which adopts it. Nothing more is reported. */
  | 'DETACHED';

interface PhaseRule {
  /** The contract state this phase is; undefined for an agent-internal phase. */
  readonly state: InstanceState | undefined;
  /** Orders and events still act on the instance: it is not ending, ended or detached. */
  readonly live: boolean;
  /** The start flow (or re-adoption) owns the instance: a VM exit or vanishing is left to it. */
  readonly starting: boolean;
  /** The workload runs and is watched: its exit fails the instance, health checks move it between RUNNING and HEALTHY, a secret refresh may restart it. */
  readonly serving: boolean;
  readonly next: readonly InstancePhase[];
}

const S = InstanceState;

/** The lifecycle: phase -> what it is and where it may go. ASSIGNED and ADOPTING are only held while Instance.assign / Instance.adopt run. */
export const LIFECYCLE: Readonly<Record<InstancePhase, PhaseRule>> = {
  ASSIGNED: { state: S.ASSIGNED, live: true, starting: true, serving: false, next: ['PULLING'] },
  PULLING: { state: S.PULLING, live: true, starting: true, serving: false, next: ['BOOTING', 'STOPPING', 'FAILING', 'DETACHED'] },
  BOOTING: { state: S.BOOTING, live: true, starting: true, serving: false, next: ['STARTING', 'STOPPING', 'FAILING', 'DETACHED'] },
  STARTING: { state: S.STARTING, live: true, starting: true, serving: false, next: ['RUNNING', 'STOPPING', 'FAILING', 'DETACHED'] },
  RUNNING: { state: S.RUNNING, live: true, starting: false, serving: true, next: ['HEALTHY', 'RESTARTING', 'STOPPING', 'FAILING', 'DETACHED'] },
  HEALTHY: { state: S.HEALTHY, live: true, starting: false, serving: true, next: ['RUNNING', 'RESTARTING', 'STOPPING', 'FAILING', 'DETACHED'] },
  RESTARTING: { state: undefined, live: true, starting: false, serving: false, next: ['RUNNING', 'STOPPING', 'FAILING', 'DETACHED'] },
  ADOPTING: { state: undefined, live: true, starting: true, serving: false, next: ['RUNNING', 'HEALTHY', 'FAILING'] },
  STOPPING: { state: S.STOPPING, live: false, starting: false, serving: false, next: ['STOPPED', 'DETACHED'] },
  FAILING: { state: undefined, live: false, starting: false, serving: false, next: ['FAILED', 'DETACHED'] },
  STOPPED: { state: S.STOPPED, live: false, starting: false, serving: false, next: [] },
  FAILED: { state: S.FAILED, live: false, starting: false, serving: false, next: [] },
  DETACHED: { state: undefined, live: false, starting: false, serving: false, next: [] },
};

export const PHASES = Object.keys(LIFECYCLE) as InstancePhase[];

/** The phase that is this contract state, if the node agent has one. */
export function phaseOf(state: InstanceState): InstancePhase | undefined {
  return PHASES.find((phase) => LIFECYCLE[phase].state === state);
}

export class LifecycleError extends Error {
  constructor(
    readonly instanceId: string,
    readonly from: InstancePhase,
    readonly to: InstancePhase,
  ) {
    super(
      `instance ${instanceId}: ${from} -> ${to} is not a declared lifecycle transition (from ${from} only ${LIFECYCLE[from].next.join(', ') || 'nothing'})`,
    );
    this.name = 'LifecycleError';
  }
}

export interface LifecycleHooks {
  readonly instanceId: string;
  readonly log: Logger;
  /** A change of the contract state, to the scheduler; called once per change, in order. */
  readonly report: (event: InstanceEventInit) => void;
}

export class InstanceLifecycle {
  private current: InstancePhase;
  private presented: InstanceState;
  private lastReason = '';
  private lastExitCode: number | undefined;

  /**
   * Starts at ASSIGNED (a new assignment) or at ADOPTING presenting the persisted state (a
   * re-adopted VM): either is what the scheduler already knows, so nothing is reported.
   */
  constructor(
    private readonly hooks: LifecycleHooks,
    initial: 'ASSIGNED' | 'ADOPTING' = 'ASSIGNED',
    presented: InstanceState = InstanceState.ASSIGNED,
  ) {
    this.current = initial;
    this.presented = LIFECYCLE[initial].state ?? presented;
  }

  get phase(): InstancePhase {
    return this.current;
  }

  /** The contract state the scheduler was last told (or, when adopted, had been told). */
  get state(): InstanceState {
    return this.presented;
  }

  /** The reason that came with `state`. */
  get reason(): string {
    return this.lastReason;
  }

  get exitCode(): number | undefined {
    return this.lastExitCode;
  }

  get live(): boolean {
    return LIFECYCLE[this.current].live;
  }

  get starting(): boolean {
    return LIFECYCLE[this.current].starting;
  }

  get serving(): boolean {
    return LIFECYCLE[this.current].serving;
  }

  can(to: InstancePhase): boolean {
    return LIFECYCLE[this.current].next.includes(to);
  }

  /**
   * While RUNNING (the workload runs but is not HEALTHY), reports `reason` as the instance's
   * reason with the same state, if it differs from the last one reported: the latest health
   * probe result, so an operator sees it before the health deadline. No transition.
   */
  noteRunning(reason: string): void {
    if (this.current !== 'RUNNING' || reason === this.lastReason) return;
    this.lastReason = reason;
    this.hooks.log.debug({ reason }, 'new health probe result');
    this.hooks.report({ instanceId: this.hooks.instanceId, state: this.presented, time: timestampNow(), reason });
  }

  /**
   * Moves to `to` if the table allows it, else logs and throws LifecycleError (nothing changes).
   * Reports when the contract state changes: entering an internal phase, or returning from one to
   * the state it presented, is not a change the scheduler hears of.
   */
  transition(to: InstancePhase, reason = '', exitCode?: number): void {
    const from = this.current;
    if (!this.can(to)) {
      const error = new LifecycleError(this.hooks.instanceId, from, to);
      this.hooks.log.error({ from, to, reason }, error.message);
      throw error;
    }
    this.current = to;
    this.hooks.log.debug({ from, to, ...(reason === '' ? {} : { reason }) }, 'lifecycle transition');
    const state = LIFECYCLE[to].state;
    if (state === undefined || state === this.presented) return;
    this.presented = state;
    this.lastReason = reason;
    if (exitCode !== undefined) this.lastExitCode = exitCode;
    this.hooks.report({ instanceId: this.hooks.instanceId, state, time: timestampNow(), reason, ...(exitCode === undefined ? {} : { exitCode }) });
  }
}
