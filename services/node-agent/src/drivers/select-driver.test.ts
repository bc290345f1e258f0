import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@shellwego/kit/process';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, describe, expect, it } from 'vitest';
import { type HostCapabilities, probeHost } from './host-capabilities.js';
import { chooseDriver, createVmDriver } from './select-driver.js';
import { VmDriverError } from './types.js';

const full: HostCapabilities = { firecracker: '/usr/bin/firecracker', qemu: '/usr/bin/qemu-system-x86_64', kvmProblem: undefined };
const noKvm = '/dev/kvm cannot be opened read-write (ENOENT)';

describe('chooseDriver', () => {
  it('auto prefers firecracker, then qemu, then process, and says why', () => {
    expect(chooseDriver('auto', full)).toEqual({ kind: 'firecracker', reason: 'auto: /usr/bin/firecracker found and /dev/kvm usable' });
    expect(chooseDriver('auto', { ...full, firecracker: undefined })).toEqual({
      kind: 'qemu',
      reason: 'auto: firecracker binary not found; /usr/bin/qemu-system-x86_64 found: real VMs with KVM if the first boot shows it works, else TCG',
    });
    expect(chooseDriver('auto', { ...full, kvmProblem: noKvm })).toMatchObject({
      kind: 'qemu',
      reason: expect.stringMatching(/firecracker needs KVM: .*ENOENT.*TCG software emulation/),
    });
    expect(chooseDriver('auto', { firecracker: undefined, qemu: undefined, kvmProblem: noKvm })).toMatchObject({
      kind: 'process',
      reason: expect.stringMatching(/qemu-system-x86_64 not found.*WITHOUT isolation/),
    });
  });

  it('honours an explicit choice and refuses one the host cannot run', () => {
    expect(chooseDriver('qemu', full, 'tcg')).toEqual({ kind: 'qemu', reason: 'configured: /usr/bin/qemu-system-x86_64, accelerator tcg (configured)' });
    expect(chooseDriver('process', full).kind).toBe('process');
    expect(() => chooseDriver('firecracker', { ...full, kvmProblem: noKvm })).toThrow(VmDriverError);
    expect(() => chooseDriver('qemu', { ...full, qemu: undefined })).toThrow(/install the Debian package qemu-system-x86/);
  });
});

describe('host probe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drv-probe-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds executables on PATH only when they are executable', () => {
    writeFileSync(join(dir, 'firecracker'), '#!/bin/sh\n');
    expect(findExecutable('firecracker', { PATH: dir })).toBeUndefined();
    chmodSync(join(dir, 'firecracker'), 0o755);
    expect(findExecutable('firecracker', { PATH: `/nonexistent:${dir}` })).toBe(join(dir, 'firecracker'));
    expect(probeHost({ env: { PATH: dir }, kvmDevice: join(dir, 'no-kvm') })).toEqual({
      firecracker: join(dir, 'firecracker'),
      qemu: undefined,
      kvmProblem: `${join(dir, 'no-kvm')} cannot be opened read-write (ENOENT)`,
    });
  });

  const host = probeHost();
  it.skipIf(host.firecracker !== undefined || host.qemu === undefined)(
    'auto picks qemu on this host (no firecracker binary, qemu installed) and logs why',
    () => {
      const { logger, lines } = capturingLogger();
      const { driver, reason } = createVmDriver({ log: logger, driver: 'auto' });
      expect(driver.kind).toBe('qemu');
      expect(reason).toMatch(/^auto: firecracker binary not found; .*qemu-system-x86_64 found/);
      expect(lines.some((line) => line.includes('VM driver: qemu') && line.includes('firecracker binary not found'))).toBe(true);
    },
  );
});
