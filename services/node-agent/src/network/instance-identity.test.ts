import { describe, expect, it } from 'vitest';
import { guestMacFor, tapDeviceFor } from './instance-identity.js';

describe('instance network names', () => {
  it('are the same for the same instance id, and differ between ids', () => {
    expect(tapDeviceFor('app-1-abc')).toBe(tapDeviceFor('app-1-abc'));
    expect(guestMacFor('app-1-abc')).toBe(guestMacFor('app-1-abc'));
    expect(tapDeviceFor('app-1-abc')).not.toBe(tapDeviceFor('app-1-abd'));
    expect(guestMacFor('app-1-abc')).not.toBe(guestMacFor('app-1-abd'));
  });

  it('fit Linux interface names (15 characters) and make a locally administered unicast MAC', () => {
    const tap = tapDeviceFor('x'.repeat(64));
    expect(tap).toMatch(/^swt[0-9a-f]{12}$/);
    expect(tap.length).toBeLessThanOrEqual(15);
    const mac = guestMacFor('some-instance');
    expect(mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
  });
});
