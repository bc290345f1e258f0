// The bundled guest agent, for tests that boot it (process driver, guest image, VMs).
import { deployables, ensureBuilt } from '@shellwego/build';

export const GUEST_AGENT_BUNDLE = deployables['guest-agent'].outfile;

export function buildGuestAgent(options: { force?: boolean } = {}) {
  return ensureBuilt('guest-agent', options);
}
