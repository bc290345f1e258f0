// Node subnets out of the cluster CIDR: each node gets the lowest free one when it joins (or at
// its next session, when it joined before subnets were allocated); a removed node's row goes, and
// its subnet with it. Allocation takes a transaction-level advisory lock, so concurrent joins on
// any scheduler replica never pick the same subnet (the unique index backs that up).
import { formatSubnet, type Ipv4Subnet, parseIpv4Subnet, subnetAt, subnetCount, subnetIndex } from '@shellwego/kit/net';
import { sql } from 'kysely';
import { SchedulerError } from '../model/scheduler-error.js';
import { type SchedulerDb, type SchedulerTx, unreportedNodeRow } from './tables.js';
import { LOCK_CLASS } from './write-transaction.js';

const SUBNET_LOCK = 3;

export interface SubnetSettings {
  /** The cluster CIDR, e.g. "10.88.0.0/16" (the CLUSTER_CIDR setting). */
  readonly clusterCidr: string;
  /** The prefix length of each node's subnet, e.g. 24 (the NODE_SUBNET_PREFIX setting). */
  readonly nodePrefix: number;
}

/** Why the settings cannot give node subnets; undefined when they can. */
export function subnetSettingsProblem(settings: SubnetSettings): string | undefined {
  const cluster = parseIpv4Subnet(settings.clusterCidr);
  if (cluster === undefined) return `CLUSTER_CIDR: ${JSON.stringify(settings.clusterCidr)} is not an IPv4 CIDR of /30 or larger, e.g. 10.88.0.0/16`;
  if (settings.nodePrefix < cluster.prefixLength || settings.nodePrefix > 30) {
    return `NODE_SUBNET_PREFIX: must be between the cluster CIDR's /${cluster.prefixLength} and /30, got /${settings.nodePrefix}`;
  }
  return undefined;
}

export class NodeSubnets {
  private readonly cluster: Ipv4Subnet;

  constructor(private readonly settings: SubnetSettings) {
    const problem = subnetSettingsProblem(settings);
    if (problem !== undefined) throw new Error(problem);
    this.cluster = parseIpv4Subnet(settings.clusterCidr) as Ipv4Subnet;
  }

  /** How many nodes the cluster CIDR has room for. */
  get capacity(): number {
    return subnetCount(this.cluster, this.settings.nodePrefix);
  }

  /**
   * The lowest subnet no node holds, inside `trx` (which must then write it to the node's row).
   * RESOURCE_EXHAUSTED naming the settings when every one is taken.
   */
  async allocate(trx: SchedulerTx): Promise<string> {
    await lockSubnets(trx);
    const rows = await trx.selectFrom('node').select('subnet').where('subnet', 'is not', null).execute();
    const taken = new Set<number>();
    for (const { subnet } of rows) {
      const parsed = subnet === null ? undefined : parseIpv4Subnet(subnet);
      const index = parsed === undefined ? undefined : subnetIndex(this.cluster, parsed);
      if (index !== undefined) taken.add(index);
    }
    for (let index = 0; index < this.capacity; index++) {
      if (!taken.has(index)) return formatSubnet(subnetAt(this.cluster, this.settings.nodePrefix, index));
    }
    throw new SchedulerError(
      'resource-exhausted',
      `the cluster CIDR ${this.settings.clusterCidr} has no free /${this.settings.nodePrefix} subnet left for a new node (all ${this.capacity} are taken); ` +
        'remove nodes that are gone (`shellwego node rm`), or set a larger SHELLWEGO_SCHEDULER_CLUSTER_CIDR or a longer SHELLWEGO_SCHEDULER_NODE_SUBNET_PREFIX',
    );
  }

  /**
   * Writes the row of a node the database does not have yet (its certificate came from the CA,
   * not JoinNode), with a subnet when one is left, so its first session starts with it like any
   * node's. Nothing happens when the row exists.
   */
  async registerUnjoined(db: SchedulerDb, nodeId: string, now: Date): Promise<void> {
    await db.transaction().execute(async (trx) => {
      let subnet: string | null = null;
      try {
        subnet = await this.allocate(trx);
      } catch (error) {
        if (!(error instanceof SchedulerError) || error.kind !== 'resource-exhausted') throw error;
      }
      await trx
        .insertInto('node')
        .values(unreportedNodeRow({ id: nodeId, joined_at: now, subnet }))
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
    });
  }

  /** The node's subnet, allocating one first when it has none (a node that joined before subnets were given out). */
  async ensure(db: SchedulerDb, nodeId: string): Promise<string | undefined> {
    const current = await db.selectFrom('node').select('subnet').where('id', '=', nodeId).executeTakeFirst();
    if (current === undefined) return undefined;
    if (current.subnet !== null) return current.subnet;
    return db.transaction().execute(async (trx) => {
      await lockSubnets(trx);
      // Given one meanwhile (another session of the node, under the lock): that one stands.
      const locked = await trx.selectFrom('node').select('subnet').where('id', '=', nodeId).executeTakeFirst();
      if (locked === undefined || locked.subnet !== null) return locked?.subnet ?? undefined;
      const subnet = await this.allocate(trx);
      await trx.updateTable('node').set({ subnet }).where('id', '=', nodeId).execute();
      return subnet;
    });
  }
}

/** Until the transaction ends, no other one allocates (a transaction-level lock; taking it again in the same one is fine). */
async function lockSubnets(trx: SchedulerTx): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${SUBNET_LOCK})`.execute(trx);
}
