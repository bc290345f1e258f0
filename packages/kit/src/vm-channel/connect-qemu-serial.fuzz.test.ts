// Fuzzing the host side of the virtio-serial handshake: whatever a guest (or a stale session on
// the same port) writes before the READY for this connection's HELLO, in whatever chunks, the
// host takes none of it for the session, and every byte after that READY reaches HTTP/2 intact.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { FUZZ_TIMEOUT_MS, FuzzTally, runFuzz } from '@shellwego/testing/fuzz/fuzz-run';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectQemuSerial } from './connect-qemu-serial.js';
import { HELLO_PREFIX, READY_PREFIX, readyLine, scanLine } from './serial-handshake.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'serial-fuzz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const hexNonce = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
// What may precede the real READY: random bytes, READY lines for other (stale) nonces, prefixes
// cut short, READY lines with malformed or over-long nonces, and HELLO lines echoed back.
const noisePiece = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  hexNonce.map((n) => readyLine(n)),
  fc.nat({ max: READY_PREFIX.length - 1 }).map((n) => READY_PREFIX.subarray(0, n)),
  fc.string({ maxLength: 120 }).map((s) => Buffer.concat([READY_PREFIX, Buffer.from(s), Buffer.from('\n')])),
  hexNonce.map((n) => Buffer.from(`${HELLO_PREFIX.toString('latin1')}${n}\n`)),
  hexNonce.map((n) => Buffer.from(`${READY_PREFIX.toString('latin1')}${n.toUpperCase()}\n`)),
);

/** Splits bytes at the given cut points (each taken modulo the length). */
function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) chunks.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  chunks.push(bytes.subarray(from));
  return chunks.filter((c) => c.length > 0);
}

/** A stand-in guest end of the port: answers the first HELLO with `script(nonce)`, in chunks. */
async function guestPort(path: string, script: (nonce: string) => Buffer[]): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let seen = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      seen = Buffer.concat([seen, data]);
      const hello = scanLine(seen, HELLO_PREFIX);
      if (hello.kind !== 'found') return;
      socket.removeAllListeners('data');
      socket.on('data', () => undefined); // resent HELLOs
      void (async () => {
        for (const chunk of script(hello.nonce)) {
          if (socket.destroyed) return;
          socket.write(chunk);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

async function readExactly(socket: Socket, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  socket.resume();
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    parts.push(chunk);
    got += chunk.length;
    if (got >= length) break;
  }
  return Buffer.concat(parts);
}

let port = 0;
describe('the virtio-serial handshake under fuzzing', () => {
  it('skips any noise before the READY for its HELLO and passes every later byte on intact', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const property = fc.asyncProperty(
      fc.array(noisePiece, { maxLength: 8 }),
      fc.uint8Array({ minLength: 1, maxLength: 256 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (noise, payload, cuts) => {
        const path = join(dir, `port-${port++}`);
        const after = Buffer.from(payload);
        const server = await guestPort(path, (nonce) => chunked(Buffer.concat([...noise, Buffer.from('\n'), readyLine(nonce), after]), cuts));
        try {
          const socket = await connectQemuSerial(path, { timeoutMs: 5_000 });
          try {
            expect(await readExactly(socket, after.length)).toEqual(after);
          } finally {
            socket.destroy();
          }
          tally.count(noise.length > 0 ? 'connected after noise' : 'connected');
        } finally {
          await new Promise((resolve) => server.close(resolve));
        }
      },
    );
    await runFuzz('vm-channel/serial-handshake', 1000, property, tally);
    expect(tally.get('connected after noise')).toBeGreaterThan(500);
  });

  it('never takes noise without the right READY for a session, and gives up with UNAVAILABLE', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const tally = new FuzzTally();
    const property = fc.asyncProperty(fc.array(noisePiece, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }), async (noise, cuts) => {
      const path = join(dir, `port-${port++}`);
      const server = await guestPort(path, () => chunked(Buffer.concat(noise), cuts));
      try {
        const error = await connectQemuSerial(path, { timeoutMs: 150 }).then(
          (socket) => {
            socket.destroy();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.Unavailable);
        tally.count('refused');
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
    await runFuzz('vm-channel/serial-handshake-noise-only', 20, property, tally);
  });
});
