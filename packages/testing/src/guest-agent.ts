// The bundled guest agent, for tests that boot it (process driver, guest image, VMs).
import { deployables } from '@shellwego/build';
import { ensureBuilt } from '@shellwego/build/build';

export const GUEST_AGENT_BUNDLE = deployables['guest-agent'].outfile;

export function buildGuestAgent(options: { force?: boolean } = {}) {
  return ensureBuilt('guest-agent', options);
}
