import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeWorkDir } from './work-dir.js';

const dirs: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const server of servers) server.close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, 'workdir-'));
  dirs.push(dir);
  return dir;
}

/** A work dir as a VM leaves it: a log file and a listening Unix socket. */
async function workDirIn(parent: string): Promise<string> {
  const workDir = join(parent, 'vms', 'web-1-ab12');
  await mkdir(workDir, { recursive: true });
  await writeFile(join(workDir, 'console.log'), 'booted\n');
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(join(workDir, 'guest.sock'), resolve));
  return workDir;
}

describe('removing a work dir', () => {
  it('deletes it by default, and an absent one is no error', async () => {
    const workDir = await workDirIn(await tempDir());
    await removeWorkDir(workDir);
    expect(existsSync(workDir)).toBe(false);
    await removeWorkDir(workDir);
  });

  it('moves it under the keep directory instead, one entry per stop, logs intact', async () => {
    const root = await tempDir();
    const keep = join(root, 'kept');
    const workDir = await workDirIn(root);
    await removeWorkDir(workDir, keep);
    expect(existsSync(workDir)).toBe(false);
    const [kept, ...more] = await readdir(keep);
    expect(more).toEqual([]);
    expect(kept).toMatch(/^web-1-ab12-\d+-[0-9a-f]{6}$/);
    expect(await readFile(join(keep, kept ?? '', 'console.log'), 'utf8')).toBe('booted\n');
    expect(statSync(keep).mode & 0o777).toBe(0o700);

    // The same VM name stopped again (a later instance) does not collide; an absent dir adds nothing.
    await removeWorkDir(await workDirIn(root), keep);
    await removeWorkDir(workDir, keep);
    expect(await readdir(keep)).toHaveLength(2);
  });

  const shm = '/dev/shm';
  const otherFs = existsSync(shm) && statSync(shm).dev !== statSync(tmpdir()).dev;
  it.skipIf(!otherFs)('copies it across filesystems, leaving out sockets, and removes the original', async () => {
    const workDir = await workDirIn(await tempDir(shm));
    const keep = join(await tempDir(), 'kept');
    await removeWorkDir(workDir, keep);
    expect(existsSync(workDir)).toBe(false);
    const [kept] = await readdir(keep);
    expect(await readdir(join(keep, kept ?? ''))).toEqual(['console.log']);
  });
});
