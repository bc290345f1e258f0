// Follows the HTTP/2 frames a server writes and spots a GOAWAY carrying an error code.
//
// When the peer sends bytes that are not HTTP/2 (on a serial port: the next host's HELLO while
// the guest still serves the previous host), nghttp2 answers with GOAWAY and then silently
// ignores all input; Node emits no event and keeps the session. On a socket the peer would
// close; on a serial port nobody does, so the link watches for that GOAWAY itself.
const FRAME_HEADER_BYTES = 9;
const GOAWAY = 0x7;

export class GoawayWatch {
  private header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerBytes = 0;
  private payloadLeft = 0;
  private goawayPayload: Buffer | undefined;
  private goawayBytes = 0;
  private failed = false;

  /** True once a GOAWAY with a non-zero error code was seen in the bytes observed so far. */
  get sawErrorGoaway(): boolean {
    return this.failed;
  }

  observe(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length && !this.failed) {
      if (this.payloadLeft === 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerBytes, chunk.length - offset);
        this.header.set(chunk.subarray(offset, offset + take), this.headerBytes);
        this.headerBytes += take;
        offset += take;
        if (this.headerBytes < FRAME_HEADER_BYTES) {
          return;
        }
        this.headerBytes = 0;
        this.payloadLeft = this.header.readUIntBE(0, 3);
        // GOAWAY payload: last stream id (4 bytes), error code (4 bytes), debug data.
        this.goawayPayload = this.header[3] === GOAWAY ? Buffer.alloc(8) : undefined;
        this.goawayBytes = 0;
        continue;
      }
      const take = Math.min(this.payloadLeft, chunk.length - offset);
      if (this.goawayPayload !== undefined && this.goawayBytes < 8) {
        const part = chunk.subarray(offset, offset + Math.min(take, 8 - this.goawayBytes));
        this.goawayPayload.set(part, this.goawayBytes);
        this.goawayBytes += part.length;
        if (this.goawayBytes === 8 && this.goawayPayload.readUInt32BE(4) !== 0) {
          this.failed = true;
        }
      }
      this.payloadLeft -= take;
      offset += take;
    }
  }
}
