// The byte channels GuestService runs over, as each end names them.

/** Where the guest agent serves GuestService. */
export type GuestServerChannel =
  /** A Unix socket: the process driver, and inside the VM behind socat's VSOCK-LISTEN bridge. */
  | { readonly kind: 'unix'; readonly path: string }
  /** A virtio-serial port inside the guest, e.g. /dev/virtio-ports/shellwego.0. */
  | { readonly kind: 'char-device'; readonly path: string };

/** How the host side reaches a guest agent. */
export type GuestClientChannel =
  /** The guest agent's Unix socket (process driver). */
  | { readonly kind: 'unix'; readonly path: string }
  /** QEMU's chardev socket behind a virtio-serial port (host side Unix socket). */
  | { readonly kind: 'qemu-serial'; readonly path: string }
  /** Firecracker's hybrid vsock: the device's uds_path and the guest's vsock port. */
  | { readonly kind: 'firecracker-vsock'; readonly udsPath: string; readonly port: number };

export function describeServerChannel(channel: GuestServerChannel): string {
  return `${channel.kind}:${channel.path}`;
}

export function describeClientChannel(channel: GuestClientChannel): string {
  return channel.kind === 'firecracker-vsock' ? `firecracker-vsock:${channel.udsPath}#${channel.port}` : `${channel.kind}:${channel.path}`;
}
