// probeSandbox against real binaries: this host's QEMU (Debian's, built with seccomp), and a
// stand-in that exits the way a QEMU built without seccomp does.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { probeSandbox } from './qemu-sandbox.js';

const dir = await mkdtemp(join(tmpdir(), 'qemu-sandbox-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

it("finds the seccomp sandbox in this host's qemu-system-x86_64", { timeout: 60_000 }, async () => {
  expect(await probeSandbox('qemu-system-x86_64')).toEqual({ supported: true });
});

it('says why when the binary has no sandbox', async () => {
  const fake = join(dir, 'qemu-without-seccomp');
  await writeFile(fake, '#!/bin/sh\necho "qemu-system-x86_64: -sandbox support is not enabled in this QEMU binary" >&2\nexit 1\n');
  await chmod(fake, 0o755);
  const support = await probeSandbox(fake);
  expect(support.supported).toBe(false);
  expect(support.supported === false && support.why).toContain('-sandbox support is not enabled in this QEMU binary');
});
