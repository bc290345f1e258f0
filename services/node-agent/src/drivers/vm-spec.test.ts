import { describe, expect, it } from 'vitest';
import { VmDriverError, type VmSpec } from './types.js';
import { parseVmRecord, vmRecordOf } from './vm-record.js';
import { requireMinimumMemory, socketPathIn, validateSpecShape, vcpusForCpuMillis } from './vm-spec.js';

const spec: VmSpec = { instanceId: 'web-1-0f0f0f0f', vcpus: 1, memoryMib: 512, rootfsPath: '/r.ext4', workDir: '/w/web-1' };

describe('VM spec checks', () => {
  it('rounds CPU millis up to whole vCPUs, at least one', () => {
    expect([1, 999, 1000, 1001, 2500].map(vcpusForCpuMillis)).toEqual([1, 1, 1, 2, 3]);
    expect(vcpusForCpuMillis(0)).toBe(1);
  });

  it('accepts a sane spec and names what is wrong with a bad one', () => {
    expect(() => validateSpecShape(spec)).not.toThrow();
    expect(() => validateSpecShape({ ...spec, instanceId: 'a'.repeat(65) })).toThrow(/at most 64/);
    expect(() => validateSpecShape({ ...spec, instanceId: 'web_1' })).toThrow(VmDriverError);
    expect(() => validateSpecShape({ ...spec, vcpus: 33 })).toThrow(/vcpus must be an integer from 1 to 32/);
    expect(() => validateSpecShape({ ...spec, memoryMib: 0 })).toThrow(/memoryMib/);
    expect(() => validateSpecShape({ ...spec, workDir: 'relative' })).toThrow(/absolute/);
    expect(() => requireMinimumMemory({ ...spec, memoryMib: 256 }, 384)).toThrow(/256 MiB is below the 384 MiB/);
    expect(socketPathIn('/w', 'guest.sock')).toBe('/w/guest.sock');
    expect(() => socketPathIn(`/${'d'.repeat(100)}`, 'guest.sock')).toThrow(/107-byte Unix socket limit/);
  });
});

describe('VM records', () => {
  const record = {
    driver: 'qemu',
    instanceId: 'web-1',
    pid: 4242,
    channel: { kind: 'qemu-serial', path: '/w/guest.sock' },
    workDir: '/w',
    bootedAt: '2025-01-01T00:00:00.000Z',
  } as const;

  it('round-trips through JSON, keeping only the persisted fields', () => {
    const handle = { ...record, detail: 'qemu tcg', consoleLogPath: '/w/console.log', exited: new Promise<never>(() => undefined) };
    const json = JSON.stringify(vmRecordOf(handle));
    expect(JSON.parse(json)).toEqual(record);
    expect(parseVmRecord(JSON.parse(json))).toEqual(record);
    const fc = { ...record, driver: 'firecracker', channel: { kind: 'firecracker-vsock', udsPath: '/w/vsock.sock', port: 1024 } };
    expect(parseVmRecord(fc)).toEqual(fc);
  });

  it('rejects a malformed record, naming the field', () => {
    expect(() => parseVmRecord({ ...record, pid: 1 })).toThrow(/field pid/);
    expect(() => parseVmRecord({ ...record, driver: 'docker' })).toThrow(/field driver/);
    expect(() => parseVmRecord({ ...record, channel: { kind: 'vsock', cid: 3 } })).toThrow(/field channel/);
    expect(() => parseVmRecord({ ...record, workDir: 'w' })).toThrow(/field workDir/);
    expect(() => parseVmRecord('nope')).toThrow(VmDriverError);
  });
});
