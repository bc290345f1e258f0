// What the guest measures of itself for the host's metrics (Health's figures): the memory its
// kernel reports and the agent's own resident memory. Inside a VM /proc/meminfo is the VM's.
import { readFile } from 'node:fs/promises';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { GuestFiguresSchema } from '@shellwego/contracts/guest/v1/guest_pb';

export async function guestFigures(meminfoPath = '/proc/meminfo'): Promise<MessageInitShape<typeof GuestFiguresSchema>> {
  const meminfo = await readFile(meminfoPath, 'utf8').catch(() => '');
  return {
    memoryTotalBytes: kibField(meminfo, 'MemTotal'),
    memoryAvailableBytes: kibField(meminfo, 'MemAvailable'),
    agentResidentBytes: BigInt(process.memoryUsage.rss()),
  };
}

/** A "Name:   123 kB" line of /proc/meminfo in bytes; 0 when absent. */
function kibField(meminfo: string, name: string): bigint {
  const kib = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(meminfo)?.[1];
  return kib === undefined ? 0n : BigInt(kib) * 1024n;
}
