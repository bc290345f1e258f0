// Path lookups inside a root directory as a process chrooted there would see them: absolute
// symlinks are relative to the root and ".." never leaves it.
import { lstat, readlink, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { isErrno } from '@shellwego/kit/errors';

const MAX_SYMLINKS = 40;

export interface RootPath {
  /** The path as the host sees it (root + resolved path). */
  readonly hostPath: string;
  /** The resolved path inside the root. */
  readonly inRoot: string;
  /** False when the path (or its tail) does not exist; hostPath then names where it would be. */
  readonly exists: boolean;
}

/** Resolves path (absolute inside root) following symlinks the way the kernel would under chroot. */
export async function resolveInRoot(root: string, path: string): Promise<RootPath> {
  let pending = splitPath(path);
  let current = '/';
  let links = 0;
  while (pending.length > 0) {
    const [part, ...rest] = pending as [string, ...string[]];
    pending = rest;
    if (part === '..') {
      current = posix.dirname(current);
      continue;
    }
    const candidate = posix.join(current, part);
    let info;
    try {
      info = await lstat(hostPathOf(root, candidate));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
        const inRoot = posix.join(candidate, ...pending);
        return { hostPath: hostPathOf(root, inRoot), inRoot, exists: false };
      }
      throw err;
    }
    if (info.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) {
        throw Object.assign(new Error(`too many symbolic links resolving ${path}`), { code: 'ELOOP' });
      }
      const target = await readlink(hostPathOf(root, candidate));
      if (target.startsWith('/')) {
        current = '/';
      }
      pending = [...splitPath(target), ...pending];
      continue;
    }
    current = candidate;
  }
  return { hostPath: hostPathOf(root, current), inRoot: current, exists: true };
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type ExecutableLookup =
  | { readonly kind: 'found'; readonly inRoot: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'not-executable'; readonly inRoot: string };

/**
 * Finds command the way execvp would inside root: as a path (relative to cwd, a path inside
 * the root) when it has a "/", else on PATH.
 */
export async function findExecutable(root: string, command: string, searchPath: string, cwd: string): Promise<ExecutableLookup> {
  const candidates = command.includes('/')
    ? [posix.resolve(cwd, command)]
    : searchPath
        .split(':')
        .filter((dir) => dir.startsWith('/'))
        .map((dir) => posix.join(dir, command));
  let notExecutable: string | undefined;
  for (const candidate of candidates) {
    const resolved = await resolveInRoot(root, candidate);
    if (!resolved.exists) {
      continue;
    }
    const info = await stat(resolved.hostPath);
    if (info.isFile() && (info.mode & 0o111) !== 0) {
      return { kind: 'found', inRoot: resolved.inRoot };
    }
    notExecutable ??= resolved.inRoot;
  }
  return notExecutable !== undefined ? { kind: 'not-executable', inRoot: notExecutable } : { kind: 'missing' };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

function hostPathOf(root: string, inRoot: string): string {
  return root === '/' ? inRoot : posix.join(root, inRoot);
}
