import type { NodeRecord } from './node-record.js';

/** Positions are (block << OFFSET_BITS) | offset: opaque, but ordered like the entries. */
const OFFSET_BITS = 6;
const OFFSET_MASK = (1 << OFFSET_BITS) - 1;
/** A block reaching this length is split in two. */
const SPLIT_AT = 1 << OFFSET_BITS;
/** A block shorter than this is merged into a neighbour when the two fit in half a block. */
const MERGE_BELOW = 8;

/** Returned by searches that find nothing. */
export const NO_POSITION = -1;

interface Block {
  readonly nodes: NodeRecord[];
  /** The most free CPU of any node in the block. */
  maxCpu: number;
  /** The most free memory of any node in the block. */
  maxMemory: number;
}

/**
 * Nodes ordered by (key ascending, id ascending), stored as a list of short
 * sorted blocks (at most 63 nodes). Every operation touches one or two
 * blocks, so refiling a node after a placement costs O(log n + block) however
 * far its key moves. Each block remembers the most free CPU and the most free
 * memory among its nodes: a search for room skips whole blocks in which no
 * node has enough of both, which matters when one resource runs out long
 * before the other (nodes full on CPU with memory to spare sort, by score,
 * among the nodes that fit).
 *
 * Positions stay valid only until the next insert, remove or update.
 */
export class SortedNodeIndex {
  private readonly blocks: Block[] = [];
  private count = 0;
  /** Nodes whose resources a room search compared one by one; for stats. */
  examined = 0;

  get size(): number {
    return this.count;
  }

  at(position: number): NodeRecord {
    const node = this.blocks[position >> OFFSET_BITS]?.nodes[position & OFFSET_MASK];
    if (node === undefined) throw new Error(`placement index has no position ${position}`);
    return node;
  }

  /** The position of the last entry, or NO_POSITION when empty. */
  lastPosition(): number {
    const last = this.blocks.length - 1;
    return last < 0 ? NO_POSITION : (last << OFFSET_BITS) | ((this.blocks[last] as Block).nodes.length - 1);
  }

  /** The position after `position`, or NO_POSITION at the end. */
  after(position: number): number {
    const block = position >> OFFSET_BITS;
    const offset = position & OFFSET_MASK;
    if (offset + 1 < (this.blocks[block] as Block).nodes.length) return position + 1;
    return block + 1 < this.blocks.length ? (block + 1) << OFFSET_BITS : NO_POSITION;
  }

  /** The position before `position`, or NO_POSITION at the start. */
  before(position: number): number {
    const block = position >> OFFSET_BITS;
    if ((position & OFFSET_MASK) > 0) return position - 1;
    return block > 0 ? ((block - 1) << OFFSET_BITS) | ((this.blocks[block - 1] as Block).nodes.length - 1) : NO_POSITION;
  }

  /** The position of the first entry sorting at or after (key, id), or NO_POSITION if none does. */
  lowerBound(key: number, id = ''): number {
    const blocks = this.blocks;
    let low = 0;
    let high = blocks.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const nodes = (blocks[mid] as Block).nodes;
      if (sortsBefore(nodes[nodes.length - 1] as NodeRecord, key, id)) low = mid + 1;
      else high = mid;
    }
    if (low === blocks.length) return NO_POSITION;
    return (low << OFFSET_BITS) | lowerBoundIn((blocks[low] as Block).nodes, key, id);
  }

  /** Files `node` under `key` (the node must not be in the index). */
  insert(node: NodeRecord, key: number): void {
    node.key = key;
    node.indexed = true;
    this.count++;
    const blocks = this.blocks;
    if (blocks.length === 0) {
      blocks.push(blockOf([node]));
      return;
    }
    const position = this.lowerBound(key, node.id);
    const index = position === NO_POSITION ? blocks.length - 1 : position >> OFFSET_BITS;
    const block = blocks[index] as Block;
    const offset = position === NO_POSITION ? block.nodes.length : position & OFFSET_MASK;
    block.nodes.splice(offset, 0, node);
    if (block.nodes.length < SPLIT_AT) {
      if (node.freeCpuMillis > block.maxCpu) block.maxCpu = node.freeCpuMillis;
      if (node.freeMemoryMib > block.maxMemory) block.maxMemory = node.freeMemoryMib;
      return;
    }
    const upper = block.nodes.splice(block.nodes.length >> 1);
    refreshMaxima(block);
    blocks.splice(index + 1, 0, blockOf(upper));
  }

  /** Takes `node` out; it must be filed under its current `key`. */
  remove(node: NodeRecord): void {
    const position = this.positionOf(node);
    const blocks = this.blocks;
    const index = position >> OFFSET_BITS;
    const block = blocks[index] as Block;
    block.nodes.splice(position & OFFSET_MASK, 1);
    node.indexed = false;
    this.count--;
    if (block.nodes.length === 0) {
      blocks.splice(index, 1);
      return;
    }
    if (block.nodes.length < MERGE_BELOW) {
      const next = blocks[index + 1];
      const previous = blocks[index - 1];
      if (next !== undefined && block.nodes.length + next.nodes.length <= SPLIT_AT >> 1) {
        block.nodes.push(...next.nodes);
        blocks.splice(index + 1, 1);
      } else if (previous !== undefined && block.nodes.length + previous.nodes.length <= SPLIT_AT >> 1) {
        previous.nodes.push(...block.nodes);
        blocks.splice(index, 1);
        refreshMaxima(previous);
        return;
      }
    }
    refreshMaxima(block);
  }

  /**
   * Refiles an indexed node under `key` after its free resources changed
   * (call it even when the key is the same: the block maxima must follow).
   */
  update(node: NodeRecord, key: number): void {
    this.remove(node);
    this.insert(node, key);
  }

  /**
   * The first position in [from, to] holding a node with at least `cpu` and
   * `memory` free, or NO_POSITION.
   */
  nextWithRoom(from: number, to: number, cpu: number, memory: number): number {
    if (from === NO_POSITION || to === NO_POSITION || from > to) return NO_POSITION;
    const blocks = this.blocks;
    const lastBlock = to >> OFFSET_BITS;
    for (let index = from >> OFFSET_BITS; index <= lastBlock; index++) {
      const block = blocks[index] as Block;
      if (block.maxCpu < cpu || block.maxMemory < memory) continue;
      const nodes = block.nodes;
      const start = index === from >> OFFSET_BITS ? from & OFFSET_MASK : 0;
      const end = index === lastBlock ? to & OFFSET_MASK : nodes.length - 1;
      for (let offset = start; offset <= end; offset++) {
        const node = nodes[offset] as NodeRecord;
        this.examined++;
        if (node.freeCpuMillis >= cpu && node.freeMemoryMib >= memory) return (index << OFFSET_BITS) | offset;
      }
    }
    return NO_POSITION;
  }

  /**
   * The last position in [to, from] holding a node with at least `cpu` and
   * `memory` free, or NO_POSITION.
   */
  previousWithRoom(from: number, to: number, cpu: number, memory: number): number {
    if (from === NO_POSITION || to === NO_POSITION || from < to) return NO_POSITION;
    const blocks = this.blocks;
    const firstBlock = to >> OFFSET_BITS;
    for (let index = from >> OFFSET_BITS; index >= firstBlock; index--) {
      const block = blocks[index] as Block;
      if (block.maxCpu < cpu || block.maxMemory < memory) continue;
      const nodes = block.nodes;
      const start = index === from >> OFFSET_BITS ? from & OFFSET_MASK : nodes.length - 1;
      const end = index === firstBlock ? to & OFFSET_MASK : 0;
      for (let offset = start; offset >= end; offset--) {
        const node = nodes[offset] as NodeRecord;
        this.examined++;
        if (node.freeCpuMillis >= cpu && node.freeMemoryMib >= memory) return (index << OFFSET_BITS) | offset;
      }
    }
    return NO_POSITION;
  }

  /** Blocks in use; for tests of the splitting and merging. */
  get blockCount(): number {
    return this.blocks.length;
  }

  private positionOf(node: NodeRecord): number {
    const position = this.lowerBound(node.key, node.id);
    if (position === NO_POSITION || this.at(position) !== node) {
      throw new Error(`placement index is corrupt: node ${node.id} is not filed under its key`);
    }
    return position;
  }
}

function sortsBefore(node: NodeRecord, key: number, id: string): boolean {
  return node.key < key || (node.key === key && node.id < id);
}

function lowerBoundIn(nodes: readonly NodeRecord[], key: number, id: string): number {
  let low = 0;
  let high = nodes.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sortsBefore(nodes[mid] as NodeRecord, key, id)) low = mid + 1;
    else high = mid;
  }
  return low;
}

function blockOf(nodes: NodeRecord[]): Block {
  const block: Block = { nodes, maxCpu: -Infinity, maxMemory: -Infinity };
  refreshMaxima(block);
  return block;
}

function refreshMaxima(block: Block): void {
  let cpu = -Infinity;
  let memory = -Infinity;
  for (const node of block.nodes) {
    if (node.freeCpuMillis > cpu) cpu = node.freeCpuMillis;
    if (node.freeMemoryMib > memory) memory = node.freeMemoryMib;
  }
  block.maxCpu = cpu;
  block.maxMemory = memory;
}
