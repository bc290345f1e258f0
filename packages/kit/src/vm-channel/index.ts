// GuestService's byte channels, for both ends: the guest agent serves, the node agent calls.

export { type ByteDevice, openCharDevice } from './byte-device.js';
export type { GuestClientChannel, GuestServerChannel } from './channel.js';
export { describeClientChannel, describeServerChannel } from './channel.js';
export { connectFirecrackerVsock, type FirecrackerVsockConnectOptions } from './connect-firecracker-vsock.js';
export { connectQemuSerial, type QemuSerialConnectOptions } from './connect-qemu-serial.js';
export { connectUnix } from './connect-unix.js';
export type { GuestTransport, GuestTransportOptions } from './create-guest-transport.js';
export { createGuestTransport, guestConnector } from './create-guest-transport.js';
export { type GuestConnector, GuestSessionManager } from './guest-session-manager.js';
export { type GuestChannelServer, type ServeGuestChannelOptions, serveGuestChannel } from './serve-guest-channel.js';
