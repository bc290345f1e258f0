import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { failedSyscall } from '@shellwego/kit/errors';
import tar, { type Header } from 'tar-stream';
import { createDecompressor, detectCompression, peekStream } from '../oci/compression.js';
import { entryChunks, type TarEntry } from '../oci/tar-entry.js';
import { parseEntryPath, symlinkEscapes } from './entry-path.js';
import { LayerRejectedError } from './errors.js';
import { type EntryMeta, NotADirectoryError, type OwnerRecord, type OwnershipMode, ThroughSymlinkError, TreeWriter } from './tree-writer.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): never content, never applied. */
const AUFS_META_PREFIX = '.wh..wh.';
const MAX_NOTES = 20;

export interface ApplyLimits {
  /** Most tar entries over all layers (a tar bomb guard). Default 1,000,000. */
  maxEntries: number;
  /** Most bytes of regular-file content over all layers. Default 64 GiB. */
  maxTotalBytes: number;
}

export const DEFAULT_APPLY_LIMITS: ApplyLimits = { maxEntries: 1_000_000, maxTotalBytes: 64 * 1024 ** 3 };

/** One layer to apply: compressed or not (detected from its bytes), opened when its turn comes. */
export interface LayerSource {
  /** The layer blob's digest, for error messages. */
  digest: string;
  /** When given, the uncompressed tar must hash to this (the config's diff_id). */
  diffId?: string;
  open(): Promise<Readable>;
}

export interface ApplyOptions {
  limits?: Partial<ApplyLimits>;
  /** Default: `chown` when running as root, else `record`. */
  ownership?: OwnershipMode;
}

export interface ApplyResult {
  entries: number;
  files: number;
  directories: number;
  symlinks: number;
  hardlinks: number;
  whiteouts: number;
  /** Character/block devices and FIFOs, which are not created (see skippedNotes). */
  skippedSpecial: number;
  /** Extended attributes in PAX headers, which are not applied. */
  skippedXattrs: number;
  /** The first few skipped paths, for logs. */
  skippedNotes: string[];
  /** Regular-file bytes written (later layers' rewrites included). */
  bytes: number;
  /** Digest of each uncompressed layer tar, bottom first. */
  diffIds: string[];
  /** With ownership `record`: owner and st_mode per path ('' is the root), for buildExt4. */
  owners?: Map<string, OwnerRecord>;
}

/**
 * Applies OCI layers, bottom first, into the empty directory `targetDir`
 * following the image spec's changeset rules:
 * - `.wh.<name>` removes `<name>` from lower layers; the whiteout itself never appears;
 * - `.wh..wh..opq` hides everything the lower layers put in its directory;
 * - whiteouts never hide entries of their own layer, wherever they appear in it;
 * - a directory over a directory merges (attributes replaced); anything else replaces the old path;
 * - hard links point at a path already in the tree; symlinks are created verbatim.
 * Device nodes and FIFOs are skipped and counted: the guest's /dev is
 * a devtmpfs, and creating them would need mknod for no use. Extended
 * attributes are skipped and counted (Node has no setxattr).
 *
 * Refused with LayerRejectedError (naming layer and entry): absolute paths,
 * `..` components, any write, whiteout or hard link whose parent path
 * crosses a symlink (whether or not it points outside), hard links to
 * missing paths, directories or symlinks that climb above the root, more
 * than `maxEntries` entries or `maxTotalBytes` bytes, unsupported entry
 * types, and content that does not match its diff_id. The caller deletes
 * `targetDir` on failure.
 */
export async function applyLayers(
  layers: Iterable<LayerSource> | AsyncIterable<LayerSource>,
  targetDir: string,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  const limits = { ...DEFAULT_APPLY_LIMITS, ...options.limits };
  const ownership = options.ownership ?? (process.getuid?.() === 0 ? 'chown' : 'record');
  const tree = new TreeWriter(targetDir, ownership);
  const result: ApplyResult = {
    entries: 0,
    files: 0,
    directories: 0,
    symlinks: 0,
    hardlinks: 0,
    whiteouts: 0,
    skippedSpecial: 0,
    skippedXattrs: 0,
    skippedNotes: [],
    bytes: 0,
    diffIds: [],
  };
  for await (const layer of layers) {
    await new LayerApplier(layer, tree, limits, result).run();
  }
  tree.finish();
  if (ownership === 'record') result.owners = tree.owners;
  return result;
}

class LayerApplier {
  /** Paths this layer created: its own whiteouts must not remove them. */
  private readonly unpacked = new Set<string>();
  /** Parents of those paths: kept (as directories) when a whiteout covers them. */
  private readonly ancestors = new Set<string>();
  private entryName = '';

  constructor(
    private readonly layer: LayerSource,
    private readonly tree: TreeWriter,
    private readonly limits: ApplyLimits,
    private readonly result: ApplyResult,
  ) {}

  async run(): Promise<void> {
    const hash = createHash('sha256');
    const extract = tar.extract();
    const blob = await this.layer.open();
    try {
      const { head, stream } = await peekStream(blob, 4);
      const hasher = new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      const feeding = pipeline(stream, createDecompressor(detectCompression(head)), hasher, extract);
      feeding.catch(() => undefined); // surfaced by the iterator or awaited below
      for await (const entry of extract) {
        this.entryName = entry.header.name;
        await this.apply(entry);
      }
      await feeding;
    } catch (err) {
      extract.destroy();
      blob.destroy();
      // File system failures (ENOSPC, EIO...) are the builder's problem, not the layer's.
      if (err instanceof LayerRejectedError || failedSyscall(err) !== undefined) throw err;
      throw this.reject(`cannot read the layer: ${(err as Error).message}`);
    }
    const diffId = `sha256:${hash.digest('hex')}`;
    this.result.diffIds.push(diffId);
    if (this.layer.diffId !== undefined && diffId !== this.layer.diffId) {
      this.entryName = '';
      throw this.reject(`the uncompressed layer is ${diffId}, but the image config says ${this.layer.diffId}`);
    }
  }

  private async apply(entry: TarEntry): Promise<void> {
    const { header } = entry;
    if (++this.result.entries > this.limits.maxEntries) {
      throw this.reject(`the image has more than ${this.limits.maxEntries} entries (tar bomb guard)`);
    }
    const path = parseEntryPath(header.name);
    if (!path.ok) throw this.reject(path.reason);
    const { parts } = path;
    const name = parts[parts.length - 1];
    const meta = metaOf(header);
    this.countXattrs(header);

    try {
      if (name === undefined) {
        if (header.type !== 'directory') throw this.reject('the root must be a directory');
        entry.resume();
        this.tree.rootDirectory(meta);
        return;
      }
      if (name.startsWith(WHITEOUT_PREFIX)) {
        entry.resume();
        this.whiteout(parts, name);
        return;
      }
      const rel = parts.join('/');
      for (const parent of this.tree.ensureParents(parts)) this.ancestors.add(parent);
      this.unpacked.add(rel);

      switch (header.type) {
        case 'directory':
          entry.resume();
          this.tree.directory(rel, meta);
          this.result.directories++;
          return;
        case 'file':
        case 'contiguous-file':
          this.result.bytes += header.size;
          if (this.result.bytes > this.limits.maxTotalBytes) {
            throw this.reject(`the image has more than ${this.limits.maxTotalBytes} bytes of files`);
          }
          await this.tree.file(rel, meta, entryChunks(entry));
          this.result.files++;
          return;
        case 'symlink':
          entry.resume();
          if (!header.linkname) throw this.reject('symlink without a target');
          this.tree.symlink(rel, header.linkname, meta);
          this.result.symlinks++;
          return;
        case 'link':
          entry.resume();
          this.hardlink(rel, header.linkname ?? '');
          this.result.hardlinks++;
          return;
        case 'character-device':
        case 'block-device':
        case 'fifo':
          entry.resume();
          // The lower path is still replaced: the layer says something else lives here now.
          this.tree.replace(rel);
          this.result.skippedSpecial++;
          if (this.result.skippedNotes.length < MAX_NOTES) this.result.skippedNotes.push(`${header.type} /${rel}`);
          return;
        default:
          throw this.reject(`unsupported tar entry type ${JSON.stringify(header.type)}`);
      }
    } catch (err) {
      if (err instanceof ThroughSymlinkError) throw this.reject(`the path goes through symlink /${err.component}`);
      if (err instanceof NotADirectoryError) throw this.reject(`/${err.component} is not a directory`);
      throw err;
    }
  }

  private whiteout(parts: string[], name: string): void {
    if (!this.tree.parentsExist(parts)) return;
    const dir = parts.slice(0, -1).join('/');
    if (name === OPAQUE_MARKER) {
      this.result.whiteouts++;
      if (!this.tree.lstat(dir)?.isDirectory()) return;
      for (const child of this.tree.children(dir)) this.removeLower(dir ? `${dir}/${child}` : child);
      return;
    }
    if (name.startsWith(AUFS_META_PREFIX)) return;
    const target = name.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..') throw this.reject('whiteout without a valid target name');
    this.result.whiteouts++;
    this.removeLower(dir ? `${dir}/${target}` : target);
  }

  /** Removes what lower layers put at `rel`, keeping what this layer created there. */
  private removeLower(rel: string): void {
    const st = this.tree.lstat(rel);
    if (!st) return;
    if (st.isDirectory() && (this.unpacked.has(rel) || this.ancestors.has(rel))) {
      for (const child of this.tree.children(rel)) this.removeLower(`${rel}/${child}`);
      return;
    }
    if (this.unpacked.has(rel)) return;
    this.tree.remove(rel, st);
  }

  private hardlink(rel: string, linkname: string): void {
    const target = parseEntryPath(linkname);
    if (!target.ok) throw this.reject(`hard link target ${JSON.stringify(linkname)}: ${target.reason}`);
    const targetRel = target.parts.join('/');
    if (target.parts.length === 0 || !this.tree.parentsExist(target.parts)) {
      throw this.reject(`hard link target /${targetRel} does not exist`);
    }
    const st = this.tree.lstat(targetRel);
    if (!st) throw this.reject(`hard link target /${targetRel} does not exist`);
    if (st.isDirectory()) throw this.reject(`hard link target /${targetRel} is a directory`);
    if (st.isSymbolicLink()) {
      // link(2) never follows it, but a link to a symlink leading out of the root has no legitimate use.
      const to = this.tree.symlinkTarget(targetRel);
      if (symlinkEscapes(target.parts, to)) throw this.reject(`hard link target /${targetRel} is a symlink leading outside the root`);
    }
    this.tree.hardlink(rel, targetRel);
  }

  private countXattrs(header: Header): void {
    const pax = header.pax as Record<string, string> | null | undefined;
    if (!pax) return;
    for (const key of Object.keys(pax)) if (key.startsWith('SCHILY.xattr.') || key.startsWith('LIBARCHIVE.xattr.')) this.result.skippedXattrs++;
  }

  private reject(reason: string): LayerRejectedError {
    return new LayerRejectedError(this.layer.digest, this.entryName, reason);
  }
}

/** Header metadata, preferring PAX values (exact uid/gid beyond octal range, sub-second mtime). */
function metaOf(header: Header): EntryMeta {
  const pax = (header.pax ?? {}) as Record<string, string>;
  const num = (v: string | undefined, fallback: number) => {
    const n = v === undefined ? NaN : Number(v);
    return Number.isFinite(n) && n >= 0 ? n : fallback;
  };
  return {
    mode: header.mode & 0o7777,
    uid: num(pax.uid, header.uid),
    gid: num(pax.gid, header.gid),
    mtime: num(pax.mtime, header.mtime.getTime() / 1000),
  };
}
