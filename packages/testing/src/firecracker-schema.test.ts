// The request check against Firecracker's official schema must refuse what breaks it, or the
// tests that find the driver's requests valid would pass whatever the driver sends.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FirecrackerSchema, firecrackerSchemaPath } from './firecracker-schema.js';

const skipReason = existsSync(firecrackerSchemaPath) ? undefined : `the official Firecracker API schema is missing at ${firecrackerSchemaPath}`;

describe.skipIf(skipReason !== undefined)(`FirecrackerSchema${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const strict = () => FirecrackerSchema.load(firecrackerSchemaPath, { rejectUndeclaredProperties: true });

  it('accepts a valid body, and refuses the same body with a wrong type, a missing required field or an unknown property', () => {
    const schema = strict();
    const valid = { drive_id: 'rootfs', path_on_host: '/x.ext4', is_root_device: false, is_read_only: true };
    expect(schema.validateRequest('PUT', '/drives/rootfs', valid)).toEqual([]);
    expect(schema.validateRequest('PUT', '/drives/rootfs', { ...valid, is_read_only: 'yes' })).toEqual([
      { at: 'body.is_read_only', message: 'must be boolean' },
    ]);
    const { is_root_device: _, ...missing } = valid;
    expect(schema.validateRequest('PUT', '/drives/rootfs', missing)).toEqual([
      { at: 'body.is_root_device', message: "must have required property 'is_root_device'" },
    ]);
    expect(schema.validateRequest('PUT', '/drives/rootfs', { ...valid, read_only: true })).toEqual([
      { at: 'body.read_only', message: 'must NOT have additional properties' },
    ]);
  });

  it('refuses bodies that break the schema: wrong type, enum, range, undeclared property, nested, no body, unknown path', () => {
    const schema = strict();
    expect(schema.validateRequest('PUT', '/machine-config', { vcpu_count: '2', mem_size_mib: 512 })).toEqual([
      { at: 'body.vcpu_count', message: 'must be integer' },
    ]);
    expect(schema.validateRequest('PUT', '/machine-config', { vcpu_count: 33, mem_size_mib: 512.5 })).toEqual([
      { at: 'body.mem_size_mib', message: 'must be integer' },
      { at: 'body.vcpu_count', message: 'must be <= 32' },
    ]);
    expect(schema.validateRequest('PUT', '/actions', { action_type: 'Reboot' })).toEqual([
      { at: 'body.action_type', message: 'must be equal to one of the allowed values: "FlushMetrics", "InstanceStart", "SendCtrlAltDel"' },
    ]);
    expect(schema.validateRequest('PUT', '/vsock', { guest_cid: 2, uds_path: '/v.sock' })).toEqual([{ at: 'body.guest_cid', message: 'must be >= 3' }]);
    expect(schema.validateRequest('PUT', '/boot-source', { kernel_image_path: '/k', bootargs: 'x' })).toEqual([
      { at: 'body.bootargs', message: 'must NOT have additional properties' },
    ]);
    // Plain Swagger semantics allow undeclared properties; only rejectUndeclaredProperties catches the typo.
    expect(FirecrackerSchema.load(firecrackerSchemaPath).validateRequest('PUT', '/boot-source', { kernel_image_path: '/k', bootargs: 'x' })).toEqual([]);
    expect(
      schema.validateRequest('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', rx_rate_limiter: { bandwidth: { size: -1 } } }),
    ).toEqual([
      { at: 'body.rx_rate_limiter.bandwidth.refill_time', message: "must have required property 'refill_time'" },
      { at: 'body.rx_rate_limiter.bandwidth.size', message: 'must be >= 0' },
    ]);
    expect(schema.validateRequest('PUT', '/actions', undefined)).toEqual([{ at: 'body', message: 'a body is required' }]);
    expect(schema.validateRequest('PUT', '/no-such-thing', {})[0]?.message).toMatch(/no operation PUT \/no-such-thing/);
  });

  it('compiles every definition (strict mode: a keyword Ajv does not know would fail it)', () => {
    const schema = strict();
    expect(schema.definitionNames.length).toBeGreaterThan(30);
    for (const name of schema.definitionNames) {
      expect(() => schema.validateDefinition(name, {}), name).not.toThrow();
    }
    const unknownKeyword = { swagger: '2.0', paths: {}, definitions: { Odd: { type: 'object', x_checks_nothing: true } } };
    expect(() => new FirecrackerSchema(unknownKeyword).validateDefinition('Odd', {})).toThrow(/unknown keyword/);
  });
});
