import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  type Stats,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '@shellwego/kit/errors';

/** Ownership, permissions and times of one entry, as the layer says. */
export interface EntryMeta {
  /** Permission bits, setuid/setgid/sticky included. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (fractions allowed). */
  mtime: number;
}

/**
 * How ownership reaches the image. `chown`: lchown on the tree (needs root
 * or CAP_CHOWN/CAP_FOWNER). `record`: the tree keeps the builder's uid and
 * owner-accessible modes, and the real owner and mode of every path are
 * collected for buildExt4 to write into the image with debugfs.
 */
export type OwnershipMode = 'chown' | 'record';

/** The owner and full st_mode (type bits included) a path must end up with in the image. */
export interface OwnerRecord {
  mode: number;
  uid: number;
  gid: number;
}

/** A path component on the way to an entry is a symlink: writing there could leave the root. */
export class ThroughSymlinkError extends Error {
  constructor(readonly component: string) {
    super(`"${component}" is a symlink; writing through it is not allowed`);
  }
}

/** A path component on the way to an entry is not a directory. */
export class NotADirectoryError extends Error {
  constructor(readonly component: string) {
    super(`"${component}" is not a directory`);
  }
}

const IMPLICIT_DIR: EntryMeta = { mode: 0o755, uid: 0, gid: 0, mtime: 0 };
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/**
 * Writes entries into a directory tree without ever following a symlink:
 * every parent component is checked with lstat (a symlink is refused, never
 * resolved), files are created with O_EXCL|O_NOFOLLOW after the old path is
 * removed, and removal never descends through links. Directory metadata is
 * applied in `finish`, because creating children changes a directory's
 * mtime and a read-only mode would block writing them. Paths are component
 * arrays already checked by parseEntryPath.
 *
 * Synchronous file system calls on purpose: entries are small and many, and
 * the async versions would cost a thread-pool round trip per syscall. Each
 * call blocks the event loop for microseconds (page-cache writes of at most
 * one stream chunk), which other RPCs of the service can afford.
 */
export class TreeWriter {
  /** Relative paths known to be real directories (not symlinks); cleared whenever a directory is removed. */
  private readonly knownDirs = new Set<string>(['']);
  /** Deferred directory metadata by relative path ('' is the root). */
  private readonly dirMeta = new Map<string, EntryMeta>([['', IMPLICIT_DIR]]);
  readonly owners = new Map<string, OwnerRecord>();

  constructor(
    readonly root: string,
    readonly ownership: OwnershipMode,
  ) {}

  /**
   * Makes sure every parent of `parts` is a real directory, creating missing
   * ones (root-owned, 0755 like tar's unlisted parents, but mtime 0 rather
   * than now, so builds are reproducible). Returns the parents' relative
   * paths, outermost first.
   */
  ensureParents(parts: readonly string[]): string[] {
    const parents: string[] = [];
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = rel ? `${rel}/${parts[i]}` : (parts[i] ?? '');
      parents.push(rel);
      if (this.knownDirs.has(rel)) continue;
      const st = this.lstat(rel);
      if (!st) {
        mkdirSync(this.abs(rel), { mode: 0o700 });
        this.dirMeta.set(rel, IMPLICIT_DIR);
        this.record(rel, S_IFDIR, IMPLICIT_DIR);
      } else if (st.isSymbolicLink()) {
        throw new ThroughSymlinkError(rel);
      } else if (!st.isDirectory()) {
        throw new NotADirectoryError(rel);
      }
      this.knownDirs.add(rel);
    }
    return parents;
  }

  /**
   * Like ensureParents but creates nothing: returns false when a parent is
   * missing or not a directory (so nothing below it can exist). Still refuses symlinks.
   */
  parentsExist(parts: readonly string[]): boolean {
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = rel ? `${rel}/${parts[i]}` : (parts[i] ?? '');
      if (this.knownDirs.has(rel)) continue;
      const st = this.lstat(rel);
      if (!st?.isDirectory()) {
        if (st?.isSymbolicLink()) throw new ThroughSymlinkError(rel);
        return false;
      }
      this.knownDirs.add(rel);
    }
    return true;
  }

  lstat(rel: string): Stats | undefined {
    try {
      return lstatSync(this.abs(rel));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** Removes whatever is at `rel` (a whole subtree for a directory; symlinks themselves, never their targets). */
  remove(rel: string, st = this.lstat(rel)): void {
    if (!st) return;
    if (st.isDirectory()) {
      rmSync(this.abs(rel), { recursive: true, force: true });
      this.knownDirs.clear();
      this.knownDirs.add('');
      // The subtree's deferred metadata goes with it: `finish` must not look for it under
      // whatever takes the path next (a file there made it fail with ENOTDIR).
      for (const key of this.dirMeta.keys()) if (key === rel || key.startsWith(`${rel}/`)) this.dirMeta.delete(key);
      if (this.ownership === 'record') {
        for (const key of this.owners.keys()) if (key === rel || key.startsWith(`${rel}/`)) this.owners.delete(key);
      }
    } else {
      this.owners.delete(rel);
      rmSync(this.abs(rel), { force: true });
    }
  }

  symlinkTarget(rel: string): string {
    return readlinkSync(this.abs(rel));
  }

  /** Names in directory `rel`. */
  children(rel: string): string[] {
    return readdirSync(this.abs(rel));
  }

  /** Creates or merges a directory (an existing directory only gets the new metadata). */
  directory(rel: string, meta: EntryMeta): void {
    const st = this.lstat(rel);
    if (!st?.isDirectory()) {
      this.remove(rel, st);
      mkdirSync(this.abs(rel), { mode: 0o700 });
    }
    this.knownDirs.add(rel);
    this.dirMeta.set(rel, meta);
    this.record(rel, S_IFDIR, meta);
  }

  /** Sets the root directory's metadata (a `./` entry). */
  rootDirectory(meta: EntryMeta): void {
    this.dirMeta.set('', meta);
  }

  /** Replaces `rel` with a regular file whose content comes from `chunks`. */
  async file(rel: string, meta: EntryMeta, chunks: AsyncIterable<Buffer>): Promise<void> {
    this.replace(rel);
    const fd = openSync(this.abs(rel), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of chunks) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      if (this.ownership === 'chown') fchownSync(fd, meta.uid, meta.gid);
      // After chown, which clears setuid/setgid.
      fchmodSync(fd, this.ownership === 'chown' ? meta.mode : meta.mode | 0o600);
      futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      closeSync(fd);
    }
    this.record(rel, S_IFREG, meta);
  }

  /** Replaces `rel` with a symlink to `target`, stored verbatim and never resolved. */
  symlink(rel: string, target: string, meta: EntryMeta): void {
    this.replace(rel);
    symlinkSync(target, this.abs(rel));
    if (this.ownership === 'chown') lchownSync(this.abs(rel), meta.uid, meta.gid);
    lutimesSync(this.abs(rel), meta.mtime, meta.mtime);
    this.record(rel, S_IFLNK | 0o777, meta);
  }

  /** Replaces `rel` with a hard link to the existing non-directory `targetRel`. */
  hardlink(rel: string, targetRel: string): void {
    if (rel === targetRel) return;
    this.replace(rel);
    linkSync(this.abs(targetRel), this.abs(rel));
    const owner = this.owners.get(targetRel);
    if (owner) this.owners.set(rel, owner);
  }

  /** Removes whatever is at `rel` so a non-directory can take its place. */
  replace(rel: string): void {
    this.remove(rel);
  }

  /** Applies directory metadata, deepest first so parents' mtimes stay as set. */
  finish(): void {
    const dirs = [...this.dirMeta.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, meta] of dirs) {
      const st = this.lstat(rel);
      if (!st?.isDirectory()) continue;
      const abs = this.abs(rel);
      if (this.ownership === 'chown') lchownSync(abs, meta.uid, meta.gid);
      chmodSync(abs, this.ownership === 'chown' ? meta.mode : meta.mode | 0o700);
      lutimesSync(abs, meta.mtime, meta.mtime);
    }
    if (this.ownership === 'record') {
      const rootMeta = this.dirMeta.get('') ?? IMPLICIT_DIR;
      this.owners.set('', { mode: S_IFDIR | rootMeta.mode, uid: rootMeta.uid, gid: rootMeta.gid });
    }
  }

  private record(rel: string, type: number, meta: EntryMeta): void {
    if (this.ownership !== 'record') return;
    const perm = (type & S_IFMT) === S_IFLNK ? 0o777 : meta.mode & 0o7777;
    this.owners.set(rel, { mode: (type & S_IFMT) | perm, uid: meta.uid, gid: meta.gid });
  }

  private abs(rel: string): string {
    return rel ? join(this.root, rel) : this.root;
  }
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}
