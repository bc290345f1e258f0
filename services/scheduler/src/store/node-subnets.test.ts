// The node subnet allocator against real Postgres (the test server; a database of its own):
// the lowest free subnet, no two nodes the same one however many allocate at once, a removed
// node's subnet given again, RESOURCE_EXHAUSTED naming the settings when none is left, and the
// settings checked.
import { type Database, openDatabase } from '@shellwego/kit/db';
import { createPostgresTestDatabase, type PostgresTestDatabase, postgresUnavailable } from '@shellwego/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerError } from '../model/scheduler-error.js';
import { migrations } from './migrations.js';
import { NodeSubnets, subnetSettingsProblem } from './node-subnets.js';
import type { SchedulerDb, SchedulerTables } from './tables.js';

const skip = await postgresUnavailable();

let testDb: PostgresTestDatabase;
let database: Database<SchedulerTables>;
let db: SchedulerDb;
beforeAll(async () => {
  if (skip !== undefined) return;
  testDb = await createPostgresTestDatabase();
  database = await openDatabase<SchedulerTables>({ url: testDb.url, schema: 'scheduler', migrations, poolSize: 20 });
  db = database.db;
});
afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

/** Registers a node in the transaction that allocates its subnet, as JoinNode does. */
async function join(subnets: NodeSubnets, id: string): Promise<string> {
  return db.transaction().execute(async (trx) => {
    const subnet = await subnets.allocate(trx);
    await trx
      .insertInto('node')
      .values({
        id,
        hostname: id,
        join_labels: '{}',
        reported_labels: '{}',
        cpu_millis: 0,
        memory_mib: 0,
        max_instances: 0,
        admin_state: 'READY',
        down: false,
        reported: false,
        last_heartbeat: null,
        driver: '',
        joined_at: new Date(),
        token_id: null,
        cert_serial: null,
        cert_expires_at: null,
        capacity_ceiling: null,
        subnet,
      })
      .execute();
    return subnet;
  });
}

describe('subnet settings', () => {
  it('names the setting that cannot give node subnets', () => {
    expect(subnetSettingsProblem({ clusterCidr: '10.88.0.0/16', nodePrefix: 24 })).toBeUndefined();
    expect(subnetSettingsProblem({ clusterCidr: '10.88.0.0/33', nodePrefix: 24 })).toMatch(/^CLUSTER_CIDR: "10.88.0.0\/33" is not an IPv4 CIDR/);
    expect(subnetSettingsProblem({ clusterCidr: '10.88.0.0/16', nodePrefix: 12 })).toBe(
      "NODE_SUBNET_PREFIX: must be between the cluster CIDR's /16 and /30, got /12",
    );
  });
});

describe.skipIf(skip !== undefined)('node subnet allocator', () => {
  it('never gives two of 40 concurrent joins the same subnet, and refuses the ones past the CIDR', async () => {
    // 10.66.0.0/24 in /29s: 32 subnets for 40 joins at once over a pool of 20 connections.
    const subnets = new NodeSubnets({ clusterCidr: '10.66.0.0/24', nodePrefix: 29 });
    expect(subnets.capacity).toBe(32);
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => join(subnets, `n-${i}`)));
    const given = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    expect(given).toHaveLength(32);
    expect(new Set(given).size).toBe(32);
    expect(given).toContain('10.66.0.0/29');
    expect(given).toContain('10.66.0.248/29');
    expect(refused).toHaveLength(8);
    for (const error of refused) {
      expect(error).toBeInstanceOf(SchedulerError);
      expect((error as SchedulerError).kind).toBe('resource-exhausted');
      expect((error as SchedulerError).message).toContain('SHELLWEGO_SCHEDULER_CLUSTER_CIDR');
    }
    const rows = await db.selectFrom('node').select('subnet').execute();
    expect(rows).toHaveLength(32);
  });

  it("gives the lowest free subnet, a removed node's first", async () => {
    const subnets = new NodeSubnets({ clusterCidr: '10.66.0.0/24', nodePrefix: 29 });
    const gone = await db.selectFrom('node').select(['id', 'subnet']).where('subnet', 'in', ['10.66.0.40/29', '10.66.0.16/29']).execute();
    await db
      .deleteFrom('node')
      .where(
        'id',
        'in',
        gone.map((n) => n.id),
      )
      .execute();
    expect(await join(subnets, 'again-1')).toBe('10.66.0.16/29');
    expect(await join(subnets, 'again-2')).toBe('10.66.0.40/29');
  });

  it('gives a node without a subnet one, once, and none to a node the database does not have', async () => {
    const subnets = new NodeSubnets({ clusterCidr: '10.66.0.0/24', nodePrefix: 29 });
    await db.updateTable('node').set({ subnet: null }).where('id', '=', 'again-1').execute();
    const [first, second] = await Promise.all([subnets.ensure(db, 'again-1'), subnets.ensure(db, 'again-1')]);
    expect(first).toBe('10.66.0.16/29');
    expect(second).toBe(first);
    expect(await subnets.ensure(db, 'no-such-node')).toBeUndefined();
  });
});
