import type { Allocation, NodeCapacity, NodeSnapshot, NodeSpec, NodeState, NodeView } from './types.js';

/** The engine's mutable bookkeeping for one node; handed out only as a NodeView. */
export class NodeRecord implements NodeView {
  readonly id: string;
  state: NodeState;
  labels: Map<string, string>;
  capacity: NodeCapacity;
  allocatedCpuMillis = 0;
  allocatedMemoryMib = 0;
  instanceCount = 0;
  readonly apps = new Map<string, number>();
  readonly allocations = new Map<string, Allocation>();
  /** The free score the node is filed under in the index; valid while `indexed`. */
  key = 0;
  indexed = false;

  constructor(spec: NodeSpec) {
    this.id = spec.id;
    this.state = spec.state;
    this.labels = new Map(Object.entries(spec.labels));
    this.capacity = spec.capacity;
  }

  get freeCpuMillis(): number {
    return this.capacity.cpuMillis - this.allocatedCpuMillis;
  }

  get freeMemoryMib(): number {
    return this.capacity.memoryMib - this.allocatedMemoryMib;
  }

  appInstanceCount(app: string): number {
    return this.apps.get(app) ?? 0;
  }

  /** Whether the node can take any instance at all, whatever its size. */
  get schedulable(): boolean {
    return this.state === 'READY' && this.instanceCount < this.capacity.maxInstances;
  }

  snapshot(): NodeSnapshot {
    return {
      id: this.id,
      state: this.state,
      labels: Object.fromEntries(this.labels),
      capacity: { ...this.capacity },
      allocated: { cpuMillis: this.allocatedCpuMillis, memoryMib: this.allocatedMemoryMib },
      instanceCount: this.instanceCount,
      appInstances: Object.fromEntries(this.apps),
    };
  }
}
