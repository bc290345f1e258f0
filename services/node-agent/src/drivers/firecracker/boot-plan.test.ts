// The firecracker driver's request sequence against Firecracker's official API schema (vendored in
// @shellwego/testing from shared/reference; its own tests show it refuses bad bodies).
import { existsSync } from 'node:fs';
import { FirecrackerSchema, firecrackerSchemaPath } from '@shellwego/testing/firecracker-schema';
import { describe, expect, it } from 'vitest';
import type { VmSpec } from '../types.js';
import { firecrackerBootPlan } from './boot-plan.js';

const skipReason = existsSync(firecrackerSchemaPath) ? undefined : `the official Firecracker API schema is missing at ${firecrackerSchemaPath}`;

const image = { vmlinuxPath: '/img/vmlinux', vmlinuzPath: '/img/vmlinuz', initramfsPath: '/img/initramfs.cpio.gz' };
const spec: VmSpec = {
  instanceId: 'shop-3-0a1b2c3d',
  vcpus: 2,
  memoryMib: 512,
  rootfsPath: '/cache/rootfs/sha256-ab.ext4',
  workDir: '/state/vms/shop-3-0a1b2c3d',
};

function plan(extra: Partial<VmSpec> = {}) {
  return firecrackerBootPlan({ spec: { ...spec, ...extra }, image, vsockUdsPath: '/state/vms/shop-3-0a1b2c3d/vsock.sock', vsockPort: 1024, guestCid: 3 });
}

describe.skipIf(skipReason !== undefined)(`Firecracker boot plan vs the official schema${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('produces the full boot sequence, each body valid for its operation', () => {
    const strict = FirecrackerSchema.load(firecrackerSchemaPath, { rejectUndeclaredProperties: true });
    const requests = plan({ network: { tapDevice: 'tap0', guestMac: '06:00:ac:10:00:02', mtu: 1500 } });
    expect(requests.map((r) => `${r.method} ${r.path} -> ${strict.bodySchemaName(r.method, r.path)}`)).toEqual([
      'PUT /boot-source -> BootSource',
      'PUT /machine-config -> MachineConfiguration',
      'PUT /drives/rootfs -> Drive',
      'PUT /vsock -> Vsock',
      'PUT /network-interfaces/eth0 -> NetworkInterface',
      'PUT /actions -> InstanceActionInfo',
    ]);
    for (const request of requests) {
      expect(strict.validateRequest(request.method, request.path, request.body), request.path).toEqual([]);
    }
    expect(plan().map((r) => r.path)).not.toContain('/network-interfaces/eth0');
  });
});
