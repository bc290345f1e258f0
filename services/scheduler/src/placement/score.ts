/** Default exchange rate between the two resources: one vCPU weighs as much as 4 GiB. */
export const DEFAULT_MEMORY_MIB_PER_CPU = 4096;

/** Upper bound for the exchange rate, so scores of uint32 resources stay exact doubles. */
export const MAX_MEMORY_MIB_PER_CPU = 1 << 20;

/**
 * A node's free resources as one number, the score both strategies rank by:
 * bin-pack takes the lowest score that fits, spread the highest.
 *
 * CPU and memory are made comparable by a fixed exchange rate (`memoryMibPerCpu`
 * MiB weigh as much as 1000 millicores) rather than by each node's own capacity.
 * With a rate that is the same for every node, subtracting a request lowers
 * every node's score by the same amount, so the order of nodes does not depend
 * on the request and the engine can keep them in one sorted index. The value is
 * free vCPU-equivalents scaled by 1000 * memoryMibPerCpu: an integer, exact in
 * a double for uint32 inputs.
 */
export function freeScore(freeCpuMillis: number, freeMemoryMib: number, memoryMibPerCpu: number): number {
  return freeCpuMillis * memoryMibPerCpu + freeMemoryMib * 1000;
}
