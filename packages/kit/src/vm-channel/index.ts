// GuestService's byte channels, for both ends: the guest agent serves, the node agent calls.
export { describeClientChannel, describeServerChannel } from './channel.js';
export type { GuestClientChannel, GuestServerChannel } from './channel.js';
export { openCharDevice, type ByteDevice } from './byte-device.js';
export { serveGuestChannel, type GuestChannelServer, type ServeGuestChannelOptions } from './serve-guest-channel.js';
export { createGuestTransport, guestConnector } from './create-guest-transport.js';
export type { GuestTransport, GuestTransportOptions } from './create-guest-transport.js';
export { GuestSessionManager, type GuestConnector } from './guest-session-manager.js';
export { connectUnix } from './connect-unix.js';
export { connectFirecrackerVsock, type FirecrackerVsockConnectOptions } from './connect-firecracker-vsock.js';
export { connectQemuSerial, type QemuSerialConnectOptions } from './connect-qemu-serial.js';
