import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCharDevice } from './byte-device.js';
import { GoawayWatch } from './goaway-watch.js';
import { HELLO_PREFIX, helloLine, newNonce, scanLine } from './serial-handshake.js';

describe('scanLine', () => {
  it('finds a line after garbage, keeps a partial line, drops what cannot start one', () => {
    const nonce = newNonce();
    const line = helloLine(nonce);
    const found = scanLine(Buffer.concat([Buffer.from('stale\x00bytes'), line, Buffer.from('PRI')]), HELLO_PREFIX);
    expect(found).toEqual({ kind: 'found', start: 11, end: 11 + line.length, nonce });
    expect(scanLine(Buffer.concat([Buffer.from('xx'), line.subarray(0, 30)]), HELLO_PREFIX)).toEqual({ kind: 'partial', start: 2 });
    expect(scanLine(Buffer.from('xxSHELLWE'), HELLO_PREFIX)).toEqual({ kind: 'partial', start: 2 });
    expect(scanLine(Buffer.from('no handshake here'), HELLO_PREFIX)).toEqual({ kind: 'none' });
    // A malformed nonce is skipped, the next good line is found.
    const bad = Buffer.from(`${HELLO_PREFIX.toString()}not-hex\n`);
    expect(scanLine(Buffer.concat([bad, line]), HELLO_PREFIX)).toMatchObject({ kind: 'found', nonce });
  });
});

describe('GoawayWatch', () => {
  const frame = (type: number, payload: Buffer): Buffer => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    return Buffer.concat([header, payload]);
  };
  const goaway = (code: number): Buffer => {
    const payload = Buffer.alloc(12);
    payload.writeUInt32BE(code, 4);
    payload.write('dbg!', 8);
    return frame(7, payload);
  };

  it('spots an error GOAWAY split across writes, not a graceful one or other frames', () => {
    const bytes = Buffer.concat([frame(4, Buffer.alloc(6)), frame(0, Buffer.from('\x07\x00\x00\x00\x00\x00\x00\x00\x00\x01')), goaway(0), goaway(6)]);
    const watch = new GoawayWatch();
    const errorStart = bytes.length - 21;
    for (let i = 0; i < errorStart; i += 5) {
      watch.observe(bytes.subarray(i, Math.min(i + 5, errorStart)));
    }
    expect(watch.sawErrorGoaway).toBe(false);
    for (let i = errorStart; i < bytes.length; i += 3) {
      watch.observe(bytes.subarray(i, i + 3));
    }
    expect(watch.sawErrorGoaway).toBe(true);
  });
});

describe('openCharDevice', () => {
  it('reads and writes through a file descriptor (a FIFO stands in for the device node)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'char-device-'));
    try {
      const path = join(dir, 'port');
      execFileSync('mkfifo', [path]);
      // Opened read-write, a FIFO loops writes back to reads: enough to exercise the fd plumbing.
      const device = await openCharDevice(path);
      await device.write(Buffer.from('ping'));
      const into = Buffer.alloc(16);
      const n = await device.read(into);
      expect(into.subarray(0, n).toString()).toBe('ping');
      await device.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
