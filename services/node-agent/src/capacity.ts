// What the node offers the scheduler: the detected CPUs and memory minus what the host keeps,
// unless configured outright.
import { availableParallelism, totalmem } from 'node:os';

export interface Capacity {
  readonly cpuMillis: number;
  readonly memoryMib: number;
  readonly maxInstances: number;
}

export interface CapacitySettings {
  readonly reservedCpuMillis: number;
  readonly reservedMemoryMib: number;
  readonly capacityCpuMillis: number | undefined;
  readonly capacityMemoryMib: number | undefined;
  readonly maxInstances: number;
}

export interface HostResources {
  readonly cpus: number;
  readonly memoryBytes: number;
}

export function detectHost(): HostResources {
  return { cpus: availableParallelism(), memoryBytes: totalmem() };
}

export function nodeCapacity(settings: CapacitySettings, host: HostResources = detectHost()): Capacity {
  const detectedMib = Math.floor(host.memoryBytes / (1024 * 1024));
  return {
    cpuMillis: settings.capacityCpuMillis ?? Math.max(0, host.cpus * 1000 - settings.reservedCpuMillis),
    memoryMib: settings.capacityMemoryMib ?? Math.max(0, detectedMib - settings.reservedMemoryMib),
    maxInstances: settings.maxInstances,
  };
}
