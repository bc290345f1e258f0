import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VmExit } from '../types.js';
import { watchKernelStart } from './kernel-start-watch.js';

let dir: string;
let log: string;
const never = new Promise<VmExit>(() => undefined);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kstart-'));
  log = join(dir, 'console.log');
  await writeFile(log, '');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('watchKernelStart (the console decides whether KVM works)', () => {
  it('reports success as soon as the kernel banner appears', async () => {
    const watching = watchKernelStart(log, never, { biosTimeoutMs: 5_000 });
    await appendFile(log, 'SeaBIOS\nBooting from ROM..\n');
    await appendFile(log, '[    0.000000] Linux version 6.1.0-56-amd64\n');
    expect(await watching).toMatchObject({ ok: true });
  });

  it('gives up when the kernel stays silent after the BIOS handed over', async () => {
    const watching = watchKernelStart(log, never, { biosTimeoutMs: 5_000, kernelTimeoutMs: 150 });
    await appendFile(log, 'Booting from ROM..\n');
    expect(await watching).toEqual({ ok: false, reason: expect.stringMatching(/no kernel output 0.15 s after the BIOS handed over/) });
  });

  it('gives up when there is no BIOS output at all, or when QEMU exits', async () => {
    expect(await watchKernelStart(log, never, { biosTimeoutMs: 100 })).toEqual({ ok: false, reason: 'no BIOS output within 0.1 s' });
    const exited = Promise.resolve({ code: 1, signal: null });
    expect(await watchKernelStart(log, exited, { biosTimeoutMs: 5_000 })).toEqual({ ok: false, reason: expect.stringMatching(/qemu exited \(code 1/) });
  });
});
