// Names an instance's network pieces from its id alone, so a restarted agent finds them again:
// the TAP device (Linux allows 15 characters) and a locally administered unicast MAC address.
import { createHash } from 'node:crypto';

const TAP_PREFIX = 'swt';

function digest(instanceId: string): Buffer {
  return createHash('sha256').update(instanceId).digest();
}

/** e.g. "swt3fa81c09d2e1": 3 + 12 hex characters. */
export function tapDeviceFor(instanceId: string): string {
  return `${TAP_PREFIX}${digest(instanceId).subarray(0, 6).toString('hex')}`;
}

function localMac(key: string): string {
  const bytes = [0x02, ...digest(key).subarray(0, 5)];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** 02:xx:xx:xx:xx:xx: the locally administered bit set, the multicast bit clear. */
export function guestMacFor(instanceId: string): string {
  return localMac(instanceId);
}

/**
 * The bridge's own MAC, fixed: a bridge without one takes its lowest port's, so it would change as
 * TAPs come and go and every guest's cached gateway entry would go stale.
 */
export function bridgeMacFor(bridge: string): string {
  return localMac(`bridge:${bridge}`);
}

/** Whether a network device is named like an instance's TAP device (swt + 12 hex). */
export function isTapDevice(name: string): boolean {
  return name.length === TAP_PREFIX.length + 12 && name.startsWith(TAP_PREFIX) && /^[0-9a-f]+$/.test(name.slice(TAP_PREFIX.length));
}
