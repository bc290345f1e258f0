import { describe, expect, it } from 'vitest';
import { nodeCapacity } from './capacity.js';

describe('nodeCapacity', () => {
  const settings = { reservedCpuMillis: 500, reservedMemoryMib: 512, capacityCpuMillis: undefined, capacityMemoryMib: undefined, maxInstances: 50 };

  it('offers the detected CPUs and memory minus the reserve', () => {
    expect(nodeCapacity(settings, { cpus: 4, memoryBytes: 8 * 1024 ** 3 })).toEqual({ cpuMillis: 3500, memoryMib: 7680, maxInstances: 50 });
  });

  it('takes configured capacity over detection and never goes negative', () => {
    expect(nodeCapacity({ ...settings, capacityCpuMillis: 1200 }, { cpus: 4, memoryBytes: 256 * 1024 ** 2 })).toEqual({
      cpuMillis: 1200,
      memoryMib: 0,
      maxInstances: 50,
    });
  });
});
