// The firecracker driver's request sequence against the official API schema
// (vendored beside the driver from shared/reference), and the validator's ability to reject bad bodies.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { VmSpec } from '../types.js';
import { firecrackerBootPlan } from './boot-plan.js';
import { officialSchemaPath } from './official-schema.js';
import { SwaggerValidator } from './swagger-validator.js';
import { parseYamlSubset } from './yaml-subset.js';

const schemaPath = officialSchemaPath;
const skipReason = existsSync(schemaPath) ? undefined : `the official Firecracker API schema is missing at ${schemaPath}`;

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
  const load = () => {
    const text = readFileSync(schemaPath, 'utf8');
    return {
      strict: SwaggerValidator.fromYaml(text, { rejectUndeclaredProperties: true }),
      plain: SwaggerValidator.fromYaml(text),
      doc: parseYamlSubset(text),
    };
  };

  it('produces the full boot sequence, each body valid for its operation', () => {
    const { strict } = load();
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

  it('rejects bodies that break the schema: missing required, wrong type, enum, range, undeclared property, unknown path', () => {
    const { strict, plain } = load();
    expect(strict.validateRequest('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: '/x', is_read_only: true })).toEqual([
      { at: 'body.is_root_device', message: 'required property is missing' },
    ]);
    expect(strict.validateRequest('PUT', '/machine-config', { vcpu_count: '2', mem_size_mib: 512 })).toEqual([
      { at: 'body.vcpu_count', message: 'expected integer, got string "2"' },
    ]);
    expect(strict.validateRequest('PUT', '/machine-config', { vcpu_count: 33, mem_size_mib: 512.5 })).toEqual([
      { at: 'body.vcpu_count', message: '33 is above the maximum 32' },
      { at: 'body.mem_size_mib', message: 'expected integer, got the number 512.5' },
    ]);
    expect(strict.validateRequest('PUT', '/actions', { action_type: 'Reboot' })[0]?.message).toMatch(
      /"Reboot" is not one of "FlushMetrics", "InstanceStart", "SendCtrlAltDel"/,
    );
    expect(strict.validateRequest('PUT', '/vsock', { guest_cid: 2, uds_path: '/v.sock' })).toEqual([
      { at: 'body.guest_cid', message: '2 is below the minimum 3' },
    ]);
    expect(strict.validateRequest('PUT', '/boot-source', { kernel_image_path: '/k', bootargs: 'x' })).toEqual([
      { at: 'body.bootargs', message: 'property is not declared by the schema' },
    ]);
    // Plain Swagger semantics allow undeclared properties; only strict mode catches the typo.
    expect(plain.validateRequest('PUT', '/boot-source', { kernel_image_path: '/k', bootargs: 'x' })).toEqual([]);
    expect(
      strict.validateRequest('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', rx_rate_limiter: { bandwidth: { size: -1 } } }),
    ).toEqual([
      { at: 'body.rx_rate_limiter.bandwidth.refill_time', message: 'required property is missing' },
      { at: 'body.rx_rate_limiter.bandwidth.size', message: '-1 is below the minimum 0' },
    ]);
    expect(strict.validateRequest('PUT', '/actions', undefined)).toEqual([{ at: 'body', message: 'a body is required' }]);
    expect(strict.validateRequest('PUT', '/no-such-thing', {})[0]?.message).toMatch(/no operation PUT \/no-such-thing/);
  });

  it('understands every keyword the schema uses (no definition is skipped as unsupported)', () => {
    const { strict, doc } = load();
    const names = Object.keys((doc as { definitions: Record<string, unknown> }).definitions);
    expect(names.length).toBeGreaterThan(30);
    for (const name of names) {
      expect(() => strict.validateDefinition(name, {}), name).not.toThrow();
    }
  });
});
