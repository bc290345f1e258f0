// A character device seen as a pair of blocking byte operations (a virtio-serial port).
import { open } from 'node:fs/promises';

/**
 * A full-duplex byte device with virtio-serial semantics: a read resolves with 0 while no host
 * is connected (it is not the end of the device), blocks while a host is connected and has sent
 * nothing, and a write blocks while no host is connected.
 */
export interface ByteDevice {
  read(into: Buffer): Promise<number>;
  /** Writes every byte of data. */
  write(data: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a character device read-write. Node cannot put a character device on its event loop
 * (net.Socket refuses the fd type), so reads and writes are blocking calls on libuv's thread
 * pool: one thread stays parked in read() while the host is connected and idle, and a write may
 * park one more while the host is away. Callers that serve a device should size the pool
 * (UV_THREADPOOL_SIZE) with that in mind.
 */
export async function openCharDevice(path: string): Promise<ByteDevice> {
  const handle = await open(path, 'r+');
  return {
    async read(into) {
      const { bytesRead } = await handle.read(into, 0, into.length, null);
      return bytesRead;
    },
    async write(data) {
      let offset = 0;
      while (offset < data.byteLength) {
        const { bytesWritten } = await handle.write(data, offset, data.byteLength - offset, null);
        offset += bytesWritten;
      }
    },
    async close() {
      await handle.close();
    },
  };
}
