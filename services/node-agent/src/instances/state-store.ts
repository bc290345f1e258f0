// The agent's local state file: which VMs it runs for which instances, so a restarted agent
// re-adopts them. Plain JSON without a single secret (no env, no secret names' values, no
// grants). Writes are atomic and coalesced off the hot path: a caller never waits for the disk.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Logger } from '@shellwego/kit/log';
import { writeFileAtomic } from '@shellwego/kit/pki';
import { parseVmRecord, type VmRecord } from '../drivers/index.js';

const FORMAT = 1;

export interface PersistedInstance {
  readonly instanceId: string;
  readonly app: string;
  readonly version: number;
  readonly imageDigest: string;
  readonly cpuMillis: number;
  readonly memoryMib: number;
  readonly state: InstanceState;
  /** ISO 8601: when the assignment arrived. */
  readonly assignedAt: string;
  readonly healthIntervalMs: number;
  /** ISO 8601 until the instance was first HEALTHY, then null. */
  readonly healthDeadlineAt: string | null;
  readonly vm: VmRecord;
  /** The instance's address on the node network, when it has one. */
  readonly address?: string;
}

export interface LoadedState {
  readonly instances: PersistedInstance[];
  /** Entries that could not be used, each saying why. */
  readonly problems: string[];
}

export class StateStore {
  private readonly entries = new Map<string, PersistedInstance>();
  private writing: Promise<void> | undefined;
  private dirty = false;
  readonly path: string;

  constructor(
    stateDir: string,
    private readonly log: Logger,
  ) {
    this.path = join(stateDir, 'instances.json');
  }

  async load(): Promise<LoadedState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { instances: [], problems: [] };
      throw error;
    }
    const problems: string[] = [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { instances: [], problems: [`${this.path} is not valid JSON; its VMs cannot be re-adopted`] };
    }
    const list = (parsed as { format?: unknown; instances?: unknown }).instances;
    if ((parsed as { format?: unknown }).format !== FORMAT || !Array.isArray(list)) {
      return { instances: [], problems: [`${this.path} is not a format ${FORMAT} state file; its VMs cannot be re-adopted`] };
    }
    for (const item of list) {
      try {
        const entry = parseEntry(item);
        this.entries.set(entry.instanceId, entry);
      } catch (error) {
        problems.push(`${this.path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return { instances: [...this.entries.values()], problems };
  }

  put(entry: PersistedInstance): void {
    this.entries.set(entry.instanceId, entry);
    this.schedule();
  }

  remove(instanceId: string): void {
    if (this.entries.delete(instanceId)) this.schedule();
  }

  /** Resolves once everything put so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  private schedule(): void {
    this.dirty = true;
    this.writing ??= this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        const body = JSON.stringify({ format: FORMAT, instances: [...this.entries.values()] }, null, 1);
        try {
          await writeFileAtomic(this.path, `${body}\n`, 0o600);
        } catch (error) {
          this.log.error(
            { err: error instanceof Error ? error.message : String(error), path: this.path },
            'cannot write the instance state file; VMs started now would not be re-adopted after a restart',
          );
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}

function parseEntry(value: unknown): PersistedInstance {
  if (typeof value !== 'object' || value === null) throw new Error('an entry is not an object');
  const v = value as Record<string, unknown>;
  const text = (key: string): string => {
    const field = v[key];
    if (typeof field !== 'string' || field === '') throw new Error(`an entry has no ${key}`);
    return field;
  };
  const count = (key: string): number => {
    const field = v[key];
    if (typeof field !== 'number' || !Number.isSafeInteger(field) || field < 0) throw new Error(`entry ${String(v.instanceId)}: ${key} is not a count`);
    return field;
  };
  const state = v.state;
  if (typeof state !== 'number' || InstanceState[state] === undefined) throw new Error(`entry ${String(v.instanceId)}: unknown state`);
  const deadline = v.healthDeadlineAt;
  if (deadline !== null && (typeof deadline !== 'string' || Number.isNaN(Date.parse(deadline)))) {
    throw new Error(`entry ${String(v.instanceId)}: healthDeadlineAt is not a time`);
  }
  const assignedAt = text('assignedAt');
  if (Number.isNaN(Date.parse(assignedAt))) throw new Error(`entry ${String(v.instanceId)}: assignedAt is not a time`);
  return {
    instanceId: text('instanceId'),
    app: text('app'),
    version: count('version'),
    imageDigest: text('imageDigest'),
    cpuMillis: count('cpuMillis'),
    memoryMib: count('memoryMib'),
    state: state as InstanceState,
    assignedAt,
    healthIntervalMs: count('healthIntervalMs'),
    healthDeadlineAt: deadline as string | null,
    vm: parseVmRecord(v.vm),
    ...(typeof v.address === 'string' && v.address !== '' ? { address: v.address } : {}),
  };
}
