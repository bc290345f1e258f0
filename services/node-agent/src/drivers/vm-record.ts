// The persisted form of a VM (VmRecord): built from a handle, and checked when read back from
// the agent's state file, which may be stale, hand-edited or from an older version.
import type { GuestClientChannel } from '@shellwego/kit/vm-channel';
import { VmDriverError, type VmDriverKind, type VmHandle, type VmRecord } from './types.js';

export function vmRecordOf(handle: VmRecord | VmHandle): VmRecord {
  return {
    driver: handle.driver,
    instanceId: handle.instanceId,
    pid: handle.pid,
    channel: handle.channel,
    workDir: handle.workDir,
    bootedAt: handle.bootedAt,
  };
}

const KINDS: readonly VmDriverKind[] = ['firecracker', 'qemu', 'process'];

/** Validates a record parsed from JSON; throws VmDriverError('invalid-spec') naming the bad field. */
export function parseVmRecord(value: unknown): VmRecord {
  const bad = (field: string): never => {
    throw new VmDriverError('invalid-spec', `VM record: field ${field} is missing or malformed`);
  };
  if (typeof value !== 'object' || value === null) {
    return bad('(record)');
  }
  const v = value as Record<string, unknown>;
  const driver = KINDS.find((kind) => kind === v.driver) ?? bad('driver');
  const instanceId = typeof v.instanceId === 'string' ? v.instanceId : bad('instanceId');
  const pid = typeof v.pid === 'number' && Number.isSafeInteger(v.pid) && v.pid > 1 ? v.pid : bad('pid');
  const workDir = typeof v.workDir === 'string' && v.workDir.startsWith('/') ? v.workDir : bad('workDir');
  const bootedAt = typeof v.bootedAt === 'string' && !Number.isNaN(Date.parse(v.bootedAt)) ? v.bootedAt : bad('bootedAt');
  return { driver, instanceId, pid, channel: parseChannel(v.channel) ?? bad('channel'), workDir, bootedAt };
}

function parseChannel(value: unknown): GuestClientChannel | undefined {
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const c = value as Record<string, unknown>;
  if ((c.kind === 'unix' || c.kind === 'qemu-serial') && typeof c.path === 'string') {
    return { kind: c.kind, path: c.path };
  }
  if (c.kind === 'firecracker-vsock' && typeof c.udsPath === 'string' && typeof c.port === 'number' && Number.isInteger(c.port)) {
    return { kind: 'firecracker-vsock', udsPath: c.udsPath, port: c.port };
  }
  return undefined;
}
