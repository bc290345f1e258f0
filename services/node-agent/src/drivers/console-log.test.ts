// The bounded console against real files and a real Unix socket: a writer that never stops stays
// within the bound, the tail survives rotation, and the pump follows a socket to its end.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it } from 'vitest';
import { BoundedLog, ConsolePump, logBytes, readLogTail, rotatedPath } from './console-log.js';

const dir = await mkdtemp(join(tmpdir(), 'console-log-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

function line(i: number): string {
  return `line ${String(i).padStart(8, '0')} ${'.'.repeat(50)}\n`;
}

it('keeps a log and its rotated half within the bound however much is written, and reads the tail across both', () => {
  const path = join(dir, 'bounded.log');
  const log = new BoundedLog(path, 64 * 1024);
  let most = 0;
  for (let i = 0; i < 50_000; i += 1) {
    log.append(Buffer.from(line(i)));
    most = Math.max(most, logBytes(path));
  }
  log.close();
  expect(most).toBeLessThanOrEqual(64 * 1024);
  // The newest lines are kept; the tail spans the rotation when the current half is short.
  const tail = readLogTail(path, 48 * 1024).toString();
  expect(tail.endsWith(line(49_999))).toBe(true);
  // What is kept varies between half the bound (just rotated) and the whole of it.
  expect(tail.length).toBe(Math.min(48 * 1024, logBytes(path)));
  expect(tail.length).toBeGreaterThanOrEqual(32 * 1024);
  // A chunk larger than half the bound keeps its end.
  const big = new BoundedLog(join(dir, 'big.log'), 1024);
  big.append(Buffer.from(`${'a'.repeat(4000)}THE END`));
  big.close();
  expect(logBytes(join(dir, 'big.log'))).toBeLessThanOrEqual(1024);
  expect(readLogTail(join(dir, 'big.log'), 7).toString()).toBe('THE END');
});

it('reads no more than the tail asked for, and nothing from a missing file', () => {
  expect(readLogTail(join(dir, 'missing.log'), 100).length).toBe(0);
  expect(readLogTail(rotatedPath(join(dir, 'missing.log')), 100).length).toBe(0);
});

it('pumps a console socket into the bounded log until the socket closes, connecting once it exists', { timeout: 30_000 }, async () => {
  const socketPath = join(dir, 'console.sock');
  const logPath = join(dir, 'console.log');
  // Attached before anything listens: it retries until the VMM serves the socket.
  const pump = ConsolePump.attach(socketPath, logPath, 32 * 1024);
  await sleep(100);
  let peer: Socket | undefined;
  const server = createServer((socket) => (peer = socket));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  while (peer === undefined) await sleep(10);
  for (let i = 0; i < 5_000; i += 1) peer.write(line(i));
  await new Promise<void>((resolve) => peer?.end(resolve));
  server.close();
  await sleep(200);
  expect(logBytes(logPath)).toBeLessThanOrEqual(32 * 1024);
  expect((await readFile(logPath, 'utf8')).endsWith(line(4_999))).toBe(true);
  pump.close();
});
