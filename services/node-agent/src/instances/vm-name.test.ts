import { describe, expect, it } from 'vitest';
import { vmNameFor } from './vm-name.js';

describe('vmNameFor', () => {
  it('uses the instance id when the drivers accept it and its sockets fit', () => {
    expect(vmNameFor('shop-3-1a2b3c4d', '/var/lib/shellwego/vms')).toBe('shop-3-1a2b3c4d');
  });

  it('maps ids the drivers refuse, or whose socket paths would be too long, to a stable short name', () => {
    const long = `${'a'.repeat(63)}-12-0123abcd`;
    const name = vmNameFor(long, '/var/lib/shellwego/vms');
    expect(name).toMatch(/^vm-[0-9a-f]{16}$/);
    expect(vmNameFor(long, '/var/lib/shellwego/vms')).toBe(name);
    expect(vmNameFor(`${'b'.repeat(63)}-12-0123abcd`, '/var/lib/shellwego/vms')).not.toBe(name);
    const deep = `/${'d'.repeat(70)}`;
    const id = 'checkout-service-12-0123abcd';
    expect(vmNameFor(id, deep)).toMatch(/^vm-/);
    expect(Buffer.byteLength(`${deep}/${vmNameFor(id, deep)}/guest.sock`)).toBeLessThanOrEqual(107);
  });

  it('says which setting to change when even a short name does not fit', () => {
    expect(() => vmNameFor('shop-1-aaaaaaaa', `/${'d'.repeat(100)}`)).toThrow(/SHELLWEGO_NODE_AGENT_STATE_DIR/);
  });
});
