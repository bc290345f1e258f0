// The scheduler's own figures, read from the active scheduler's cluster state when scraped
// (nodes, sessions, instances, pending reasons, rollouts), plus placement decisions as they
// happen. A standby reports leader 0 and no cluster figures: the active one owns them. Labels
// are contract state names and placement constraints, never app, node or instance names.
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { Counter, Gauge, type MetricsRegistry } from '@shellwego/kit/metrics';
import { type ClusterState, nodeProtoState } from '../leader/cluster-state.js';

/** What the metrics read of the active scheduler (the Leader). */
export interface ActiveScheduler {
  readonly state: ClusterState;
  readonly hub: { readonly size: number };
}

export interface SchedulerMetrics {
  /** Placement decisions: outcome placed | pending (no node fits, by constraint). */
  readonly placements: Counter<'outcome' | 'constraint'>;
}

export function createSchedulerMetrics(registry: MetricsRegistry, activeLeader: () => ActiveScheduler | undefined): SchedulerMetrics {
  const registers = [registry];
  new Gauge({
    name: 'shellwego_scheduler_leader',
    help: '1 while this scheduler is the active one (holds the leader lock), else 0.',
    registers,
    collect() {
      this.set(activeLeader() === undefined ? 0 : 1);
    },
  });
  new Gauge({
    name: 'shellwego_scheduler_nodes',
    help: 'Nodes by state (READY, CORDONED, DRAINING, DOWN; UNSPECIFIED until a first Hello), on the active scheduler.',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const state = activeLeader()?.state;
      if (state === undefined) return;
      for (const name of ['READY', 'CORDONED', 'DRAINING', 'DOWN', 'UNSPECIFIED']) this.set({ state: name }, 0);
      for (const node of state.nodes.values()) this.inc({ state: NodeState[nodeProtoState(node)] });
    },
  });
  new Gauge({
    name: 'shellwego_scheduler_sessions',
    help: 'Node Sessions open on the active scheduler.',
    registers,
    collect() {
      this.set(activeLeader()?.hub.size ?? 0);
    },
  });
  new Gauge({
    name: 'shellwego_scheduler_instances',
    help: 'Live (not yet terminal) instances by state, on the active scheduler.',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const state = activeLeader()?.state;
      if (state === undefined) return;
      for (const instance of state.liveInstances()) this.inc({ state: InstanceState[instance.state] });
    },
  });
  new Gauge({
    name: 'shellwego_scheduler_pending_instances',
    help: 'PENDING instances by the placement constraint that keeps them there (no-nodes, labels, node-state, instance-slots, memory, cpu, cpu-and-memory, fragmentation; unknown before the first placement pass).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const state = activeLeader()?.state;
      if (state === undefined) return;
      for (const instance of state.liveInstances()) {
        if (instance.state === InstanceState.PENDING) this.inc({ reason: instance.pendingConstraint ?? 'unknown' });
      }
    },
  });
  new Gauge({
    name: 'shellwego_scheduler_rollouts',
    help: 'Apps by the state of their latest rollout (IN_PROGRESS, SUCCEEDED, FAILED, ROLLED_BACK), on the active scheduler.',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const state = activeLeader()?.state;
      if (state === undefined) return;
      for (const app of state.apps.values()) {
        if (app.deletedAt === null) this.inc({ state: DeploymentState[app.deployment.state] });
      }
    },
  });
  return {
    placements: new Counter({
      name: 'shellwego_scheduler_placements_total',
      help: 'Placement decisions: outcome placed (constraint none), or pending with the constraint no node passed.',
      labelNames: ['outcome', 'constraint'],
      registers,
    }),
  };
}
