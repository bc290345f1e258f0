import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable, resolveInRoot } from './path-in-root.js';
import { resolveUser } from './user-spec.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rootfs-'));
  await mkdir(join(root, 'etc'));
  await mkdir(join(root, 'bin'));
  await mkdir(join(root, 'data/real'), { recursive: true });
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1001::/home/app:/bin/sh\nbroken-line\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:\napp:x:1001:\n');
  await writeFile(join(root, 'bin/busybox'), '', { mode: 0o755 });
  await writeFile(join(root, 'bin/readme'), '', { mode: 0o644 });
  await symlink('/bin/busybox', join(root, 'bin/sh'));
  // Absolute links point inside the root, and ".." stops at the root.
  await symlink('/data/real', join(root, 'data/link'));
  await symlink('../../../../etc', join(root, 'data/escape'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('resolveUser', () => {
  it('resolves names, ids and groups from the root filesystem', async () => {
    expect(await resolveUser(root, '')).toEqual({ uid: 0, gid: 0 });
    expect(await resolveUser(root, 'app')).toEqual({ uid: 1000, gid: 1001 });
    expect(await resolveUser(root, '1000')).toEqual({ uid: 1000, gid: 1001 });
    expect(await resolveUser(root, '4242')).toEqual({ uid: 4242, gid: 0 });
    expect(await resolveUser(root, '4242:77')).toEqual({ uid: 4242, gid: 77 });
    expect(await resolveUser(root, 'app:staff')).toEqual({ uid: 1000, gid: 50 });
  });

  it('rejects unknown names and malformed specs', async () => {
    await expect(resolveUser(root, 'nobody-here')).rejects.toThrow(/not in the root filesystem's \/etc\/passwd/);
    await expect(resolveUser(root, 'app:nogroup')).rejects.toThrow(/\/etc\/group/);
    await expect(resolveUser(root, 'a:b:c')).rejects.toThrow(/not of the form/);
    await expect(resolveUser(root, '99999999999')).rejects.toThrow(/out of range/);
  });
});

describe('paths inside the root', () => {
  it('follows symlinks as a chrooted process would', async () => {
    expect(await resolveInRoot(root, '/data/link')).toMatchObject({ inRoot: '/data/real', exists: true });
    expect(await resolveInRoot(root, '/data/escape/passwd')).toMatchObject({ hostPath: join(root, 'etc/passwd'), exists: true });
    expect(await resolveInRoot(root, '/data/link/new/dir')).toMatchObject({ hostPath: join(root, 'data/real/new/dir'), exists: false });
  });

  it('finds executables on PATH, by path, and relative to the working directory', async () => {
    expect(await findExecutable(root, 'sh', '/usr/bin:/bin', '/')).toEqual({ kind: 'found', inRoot: '/bin/busybox' });
    expect(await findExecutable(root, '/bin/sh', '', '/')).toEqual({ kind: 'found', inRoot: '/bin/busybox' });
    expect(await findExecutable(root, './busybox', '', '/bin')).toEqual({ kind: 'found', inRoot: '/bin/busybox' });
    expect(await findExecutable(root, 'readme', '/bin', '/')).toEqual({ kind: 'not-executable', inRoot: '/bin/readme' });
    expect(await findExecutable(root, 'node', '/usr/bin:/bin', '/')).toEqual({ kind: 'missing' });
  });
});
