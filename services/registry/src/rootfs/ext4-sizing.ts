import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const BLOCK_SIZE = 4096;
export const INODE_SIZE = 256;
const BLOCKS_PER_GROUP = 8 * BLOCK_SIZE;
/** Inodes 1-11 are reserved (11 is lost+found). */
const RESERVED_INODES = 11;
/** lost+found as mke2fs creates it on a 4 KiB-block file system. */
const LOST_FOUND_BLOCKS = 4;
/** ext4 keeps symlink targets shorter than this inside the inode. */
const FAST_SYMLINK_MAX = 59;
/** Usable bytes of a directory block with metadata_csum (12-byte checksum tail). */
const DIR_BLOCK_BYTES = BLOCK_SIZE - 12;
/** One extent maps at most 32768 blocks; the inode holds 4, an extent block ~340 more. */
const EXTENT_BLOCKS = 32768;

export interface TreeUsage {
  /** Distinct inodes (hard links counted once), the root included. */
  inodes: number;
  /** File, directory and symlink blocks. */
  dataBlocks: number;
  /** Regular-file bytes. */
  fileBytes: number;
}

/** What a tree will take inside an ext4 file system with 4 KiB blocks. */
export function measureTree(root: string): TreeUsage {
  const usage: TreeUsage = { inodes: 1, dataBlocks: dirBlocks(root), fileBytes: 0 };
  const seen = new Set<number>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      if (st.isDirectory()) {
        usage.inodes++;
        usage.dataBlocks += dirBlocks(path);
        walk(path);
        continue;
      }
      if (st.nlink > 1) {
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
      }
      usage.inodes++;
      if (st.isSymbolicLink()) {
        if (st.size > FAST_SYMLINK_MAX) usage.dataBlocks++;
      } else if (st.isFile()) {
        usage.fileBytes += st.size;
        const blocks = Math.ceil(st.size / BLOCK_SIZE);
        usage.dataBlocks += blocks + (blocks > 4 * EXTENT_BLOCKS ? Math.ceil(blocks / EXTENT_BLOCKS / 340) + 1 : 0);
      }
    }
  };
  walk(root);
  return usage;
}

/** Directory blocks: 8 bytes + name (4-aligned) per entry, plus an htree index block for multi-block directories. */
function dirBlocks(dir: string): number {
  let bytes = 24; // "." and ".."
  for (const name of readdirSync(dir)) bytes += 8 + Math.ceil(Buffer.byteLength(name) / 4) * 4;
  const blocks = Math.ceil(bytes / DIR_BLOCK_BYTES);
  return blocks > 1 ? blocks + Math.ceil(blocks / 500) : blocks;
}

export interface Ext4Geometry {
  blocks: number;
  inodes: number;
}

/** Smallest image mke2fs accepts for an empty tree is 56 blocks (224 KiB); stay well clear of it. */
export const MIN_IMAGE_BLOCKS = 256;

/**
 * Image geometry for a tree: content plus ext4 metadata (bitmaps, inode
 * tables, superblock and descriptor backups, lost+found), then
 * `headroomPercent` more, and at least `minHeadroomBytes` free.
 */
export function ext4Geometry(usage: TreeUsage, headroomPercent: number, minHeadroomBytes: number): Ext4Geometry {
  const grow = (n: number) => Math.ceil(n * (1 + headroomPercent / 100));
  const inodes = roundUp(grow(usage.inodes + RESERVED_INODES) + 16, 16);
  const content = usage.dataBlocks + LOST_FOUND_BLOCKS;
  let total = content;
  // Metadata depends on the group count, which depends on the total: two rounds settle it.
  for (let i = 0; i < 2; i++) {
    const groups = Math.max(1, Math.ceil(total / BLOCKS_PER_GROUP));
    const gdtBlocks = Math.ceil((groups * 64) / BLOCK_SIZE);
    const backups = 1 + sparseBackups(groups);
    const inodeTable = Math.ceil((roundUp(Math.ceil(inodes / groups), 16) * groups * INODE_SIZE) / BLOCK_SIZE);
    total = content + inodeTable + groups * 2 + backups * (1 + gdtBlocks) + 16;
  }
  const headroom = Math.max(grow(total) - total, Math.ceil(minHeadroomBytes / BLOCK_SIZE));
  return { blocks: Math.max(MIN_IMAGE_BLOCKS, total + headroom), inodes };
}

/** Groups other than 0 holding superblock backups (sparse_super: 1 and powers of 3, 5, 7). */
function sparseBackups(groups: number): number {
  let n = 0;
  for (const base of [3, 5, 7]) for (let g = base; g < groups; g *= base) n++;
  return n + (groups > 1 ? 1 : 0);
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}
