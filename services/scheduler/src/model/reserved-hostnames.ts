// Host names a node may not take at join: its certificate carries the name it
// chose, so a node named like the platform's own services (or loopback) would
// hold a certificate valid for names clients connect to.
import { isIP } from 'node:net';

const SERVICE_NAMES = new Set(['scheduler', 'secrets', 'registry', 'node-agent', 'guest-agent']);

/** Why `hostname` is reserved, or undefined when a node may use it. */
export function reservedHostnameProblem(hostname: string): string | undefined {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost') || name === 'localhost.localdomain') return 'it names loopback';
  const ip = name.replace(/^\[|\]$/g, '');
  if (isIP(ip) !== 0) return 'an IP address is not a host name (and loopback addresses name this host)';
  const first = name.split('.')[0] ?? '';
  if (SERVICE_NAMES.has(first)) return `"${first}" is the name of a platform service`;
  return undefined;
}
