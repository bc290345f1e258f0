import { createHash } from 'node:crypto';
import { open, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { RootfsBuildError } from './errors.js';
import { BLOCK_SIZE, ext4Geometry, INODE_SIZE, measureTree } from './ext4-sizing.js';
import type { OwnerRecord } from './tree-writer.js';

/**
 * Our own mke2fs.conf, so the host's file cannot change features or
 * defaults. No journal: the rootfs is attached read-only and never written,
 * so a journal would only cost space (4 MiB+) and a replay step. No
 * resize_inode: a read-only image is never grown. metadata_csum and 64bit
 * are what current kernels expect of ext4.
 */
const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,dir_index,ext_attr
	blocksize = ${BLOCK_SIZE}
	inode_size = ${INODE_SIZE}
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	rootfs = {
		inode_ratio = 16384
	}
`;

const MAX_ATTEMPTS = 3;

export interface Ext4Options {
  /** Free space on top of the content, in percent. Default 20. */
  headroomPercent?: number;
  /** At least this much free space. Default 4 MiB. */
  minHeadroomMiB?: number;
  /** Volume label. Default "rootfs". */
  label?: string;
  /**
   * Makes the image reproducible: the UUID and directory hash seed derive
   * from it (use the image digest), and every inode's ctime/atime and the
   * superblock times are set to `timestamp`. Same tree + same seed = same bytes.
   */
  seed?: string;
  /** Seconds since the epoch for superblock times and inode ctime/atime. Default 0. */
  timestamp?: number;
  /** Owner and st_mode per path ('' is the root) to write into the image (TreeWriter's `record` mode). */
  owners?: ReadonlyMap<string, OwnerRecord>;
  /** Path prefix for the temporary mke2fs.conf and debugfs script. Default: outFile. */
  tempPrefix?: string;
}

export interface Ext4Result {
  sizeBytes: number;
  blocks: number;
  inodes: number;
  /** Regular-file bytes in the tree. */
  contentBytes: number;
  /** mkfs runs needed (more than one when the size estimate was short). */
  attempts: number;
}

/**
 * Builds an ext4 image of directory `dir` at `outFile` with `mkfs.ext4 -d`
 * (no mount, no loop device). The image is sized from the tree: content
 * blocks, inodes and metadata plus headroom; if mkfs still runs out of
 * space it is retried larger.
 */
export async function buildExt4(dir: string, outFile: string, options: Ext4Options = {}): Promise<Ext4Result> {
  const usage = measureTree(dir);
  const workPrefix = options.tempPrefix ?? outFile;
  const confFile = `${workPrefix}.mke2fs.conf`;
  const scriptFile = `${workPrefix}.debugfs`;
  const timestamp = Math.floor(options.timestamp ?? 0);
  const uuid = uuidFrom(options.seed ?? `${Date.now()}-${Math.random()}`);
  await writeFile(confFile, MKE2FS_CONF);
  try {
    let geometry = ext4Geometry(usage, options.headroomPercent ?? 20, (options.minHeadroomMiB ?? 4) * 1024 * 1024);
    let attempt = 1;
    for (; ; attempt++) {
      await createSparseFile(outFile, geometry.blocks * BLOCK_SIZE);
      const mkfs = await execa(
        'mkfs.ext4',
        [
          '-q',
          '-F',
          '-T',
          'rootfs',
          '-b',
          String(BLOCK_SIZE),
          '-I',
          String(INODE_SIZE),
          '-N',
          String(geometry.inodes),
          '-m',
          '0',
          '-L',
          options.label ?? 'rootfs',
          '-U',
          uuid,
          '-E',
          `root_owner=0:0,hash_seed=${uuid},lazy_itable_init=0,nodiscard`,
          '-d',
          dir,
          outFile,
        ],
        {
          env: { MKE2FS_CONFIG: confFile, E2FSPROGS_FAKE_TIME: String(timestamp), LC_ALL: 'C' },
          reject: false,
          all: true,
        },
      );
      if (mkfs.exitCode === 0) break;
      const output = String(mkfs.all ?? mkfs.message);
      if (attempt < MAX_ATTEMPTS && /Could not allocate (block|inode)|No space left/.test(output)) {
        geometry = { blocks: Math.ceil(geometry.blocks * 1.5), inodes: Math.ceil((geometry.inodes * 1.5) / 16) * 16 };
        continue;
      }
      throw new RootfsBuildError(`mkfs.ext4 failed: ${tail(output)}`);
    }
    await fixInodes(outFile, scriptFile, timestamp, options.owners);
    return {
      sizeBytes: geometry.blocks * BLOCK_SIZE,
      blocks: geometry.blocks,
      inodes: geometry.inodes,
      contentBytes: usage.fileBytes,
      attempts: attempt,
    };
  } catch (err) {
    await rm(outFile, { force: true });
    throw err;
  } finally {
    await rm(confFile, { force: true });
    await rm(scriptFile, { force: true });
  }
}

/**
 * mkfs -d copies each source inode's ctime and atime (which the kernel set
 * while we extracted, and mkfs's own reads bump), so set them to
 * `timestamp` in every used inode; also writes recorded owners and modes.
 */
async function fixInodes(image: string, scriptFile: string, timestamp: number, owners?: ReadonlyMap<string, OwnerRecord>): Promise<void> {
  const lines: string[] = [];
  for (const ino of await usedInodes(image)) {
    if (ino !== 2 && ino < 11) continue; // reserved inodes keep mke2fs's own (already fixed) times
    lines.push(`sif <${ino}> ctime ${timestamp}`, `sif <${ino}> atime ${timestamp}`);
  }
  for (const [rel, owner] of owners ?? []) {
    if (/[\n\r]/.test(rel)) throw new RootfsBuildError(`cannot record the owner of a path with a line break: ${JSON.stringify(rel)}`);
    const path = `"/${rel.replaceAll('"', '""')}"`;
    lines.push(`sif ${path} uid ${owner.uid}`, `sif ${path} gid ${owner.gid}`, `sif ${path} mode 0${owner.mode.toString(8)}`);
  }
  await writeFile(scriptFile, `${lines.join('\n')}\n`);
  const run = await execa('debugfs', ['-w', '-f', scriptFile, image], { reject: false, all: true, env: { LC_ALL: 'C' } });
  // debugfs exits 0 even when a command fails; every line it prints that is not an echoed command is an error.
  const errors = String(run.all ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('debugfs ') && !l.startsWith('debugfs: '));
  if (run.exitCode !== 0 || errors.length > 0) {
    throw new RootfsBuildError(`debugfs could not finish the image: ${tail(errors.join('\n') || String(run.all))}`);
  }
}

/** Inode numbers in use, from dumpe2fs's per-group free ranges. */
async function usedInodes(image: string): Promise<number[]> {
  const { stdout } = await execa('dumpe2fs', [image], { env: { LC_ALL: 'C' }, stderr: 'ignore' });
  const total = Number(/^Inode count:\s+(\d+)/m.exec(stdout)?.[1]);
  const perGroup = Number(/^Inodes per group:\s+(\d+)/m.exec(stdout)?.[1]);
  if (!total || !perGroup) throw new RootfsBuildError('dumpe2fs output has no inode counts');
  const free = new Uint8Array(total + 1);
  for (const m of stdout.matchAll(/^\s+Free inodes: (.*)$/gm)) {
    for (const range of (m[1] ?? '').split(',')) {
      const [a, b] = range.trim().split('-').map(Number);
      if (a === undefined || Number.isNaN(a) || range.trim() === '') continue;
      for (let i = a; i <= (b ?? a); i++) free[i] = 1;
    }
  }
  const used: number[] = [];
  for (let i = 1; i <= total; i++) if (!free[i]) used.push(i);
  return used;
}

async function createSparseFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w', 0o644);
  try {
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
}

/** A version-4-shaped UUID derived from `seed`. */
function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(`shellwego-rootfs:${seed}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x40;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n').slice(-2000);
}
