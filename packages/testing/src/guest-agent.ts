// The bundled guest agent, for tests that boot it (process driver, guest image, VMs).
export { buildGuestAgent, GUEST_AGENT_BUNDLE } from '@shellwego/guest-agent/build';
