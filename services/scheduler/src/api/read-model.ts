// What the read RPCs answer, straight from the database, so a standby serves
// the same answers as the active scheduler.
import { create, fromBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ImageConfigSchema, type InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import {
  type App,
  AppSchema,
  AppSpecSchema,
  type AppVersion,
  AppVersionSchema,
  DeploymentSchema,
  type Instance,
  InstanceSchema,
} from '@shellwego/contracts/scheduler/v1/apps_pb';
import { type Node, NodeSchema } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { Selectable } from 'kysely';
import { nodeProtoState } from '../leader/cluster-state.js';
import { stateName, TERMINAL_STATES } from '../model/instance-states.js';
import type { AppTable, AppVersionTable, InstanceTable, NodeTable, SchedulerDb } from '../store/tables.js';

export async function readApp(db: SchedulerDb, name: string): Promise<App | undefined> {
  const row = await db.selectFrom('app').selectAll().where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst();
  if (row === undefined) return undefined;
  return (await appsFrom(db, [row]))[0];
}

export async function listApps(db: SchedulerDb): Promise<App[]> {
  const rows = await db.selectFrom('app').selectAll().where('deleted_at', 'is', null).orderBy('name').execute();
  return appsFrom(db, rows);
}

/** Every stored version of an app, newest first. */
export async function readVersions(db: SchedulerDb, app: string): Promise<AppVersion[]> {
  const rows = await db.selectFrom('app_version').selectAll().where('app', '=', app).orderBy('version', 'desc').execute();
  return rows.map((row) => versionFrom(row, undefined));
}

async function appsFrom(db: SchedulerDb, rows: readonly Selectable<AppTable>[]): Promise<App[]> {
  if (rows.length === 0) return [];
  const names = rows.map((r) => r.name);
  const versions = await db.selectFrom('app_version').selectAll().where('app', 'in', names).execute();
  const counts = await db
    .selectFrom('instance')
    .innerJoin('app', 'app.name', 'instance.app')
    .select(['instance.app', 'instance.state', (eb) => eb.fn.countAll<bigint>().as('n')])
    .where('instance.app', 'in', names)
    .where('instance.state', 'not in', TERMINAL_STATES as number[])
    .whereRef('instance.version', '=', 'app.current_version')
    .groupBy(['instance.app', 'instance.state'])
    .execute();
  return rows.map((row) => {
    const current = versions.find((v) => v.app === row.name && v.version === row.current_version);
    const instanceCounts: Record<string, number> = {};
    for (const count of counts) {
      if (count.app === row.name) instanceCounts[stateName(count.state as InstanceState)] = Number(count.n);
    }
    const d = row.deployment;
    return create(AppSchema, {
      name: row.name,
      ...(current === undefined ? {} : { current: versionFrom(current, row.replicas) }),
      deployment: create(DeploymentSchema, {
        targetVersion: d.targetVersion,
        fromVersion: d.fromVersion,
        state: d.state,
        healthy: d.healthy,
        desired: d.desired,
        reason: d.reason,
        ...(d.startedAt === null ? {} : { startedAt: timestampFromDate(new Date(d.startedAt)) }),
        ...(d.finishedAt === null ? {} : { finishedAt: timestampFromDate(new Date(d.finishedAt)) }),
      }),
      instanceCounts,
      createdAt: timestampFromDate(row.created_at),
    });
  });
}

/** `replicas` overrides the stored spec's count: ScaleApp changes the app, not the immutable version. */
function versionFrom(row: Selectable<AppVersionTable>, replicas: number | undefined): AppVersion {
  const spec = fromBinary(AppSpecSchema, row.spec);
  if (replicas !== undefined) spec.replicas = replicas;
  return create(AppVersionSchema, {
    version: row.version,
    spec,
    imageDigest: row.image_digest,
    rootfsSha256: row.rootfs_sha256,
    imageConfig: fromBinary(ImageConfigSchema, row.image_config),
    createdAt: timestampFromDate(row.created_at),
    createdBy: row.created_by,
  });
}

export interface InstanceQuery {
  readonly app: string;
  readonly nodeId: string;
  readonly includeTerminal: boolean;
}

export async function listInstances(db: SchedulerDb, query: InstanceQuery): Promise<Instance[]> {
  let select = db.selectFrom('instance').selectAll();
  if (query.app !== '') select = select.where('app', '=', query.app);
  if (query.nodeId !== '') select = select.where('node_id', '=', query.nodeId);
  if (!query.includeTerminal) select = select.where('state', 'not in', TERMINAL_STATES as number[]);
  const rows = await select.orderBy('app').orderBy('created_at').orderBy('id').execute();
  return rows.map(instanceFrom);
}

function instanceFrom(row: Selectable<InstanceTable>): Instance {
  return create(InstanceSchema, {
    id: row.id,
    app: row.app,
    version: row.version,
    nodeId: row.node_id ?? '',
    state: row.state as InstanceState,
    reason: row.reason,
    address: row.address,
    updatedAt: timestampFromDate(row.updated_at),
    ...(row.exit_code === null ? {} : { exitCode: row.exit_code }),
  });
}

export async function listNodes(db: SchedulerDb, nodeId?: string): Promise<Node[]> {
  let select = db.selectFrom('node').selectAll();
  if (nodeId !== undefined) select = select.where('id', '=', nodeId);
  const rows = await select.orderBy('id').execute();
  let usage = db
    .selectFrom('instance')
    .select([
      'node_id',
      (eb) => eb.fn.sum<bigint>('cpu_millis').as('cpu'),
      (eb) => eb.fn.sum<bigint>('memory_mib').as('memory'),
      (eb) => eb.fn.countAll<bigint>().as('n'),
    ])
    .where('node_id', 'is not', null)
    .where('state', 'not in', TERMINAL_STATES as number[]);
  if (nodeId !== undefined) usage = usage.where('node_id', '=', nodeId);
  const used = await usage.groupBy('node_id').execute();
  return rows.map((row) =>
    nodeFrom(
      row,
      used.find((u) => u.node_id === row.id),
    ),
  );
}

function nodeFrom(row: Selectable<NodeTable>, used: { cpu: bigint; memory: bigint; n: bigint } | undefined): Node {
  return create(NodeSchema, {
    id: row.id,
    hostname: row.hostname,
    state: nodeProtoState({ reported: row.reported, down: row.down, adminState: row.admin_state }),
    labels: row.join_labels,
    reportedLabels: row.reported_labels,
    ...(row.capacity_ceiling === null ? {} : { capacityCeiling: row.capacity_ceiling }),
    capacity: { cpuMillis: row.cpu_millis, memoryMib: row.memory_mib, maxInstances: row.max_instances },
    allocated: { cpuMillis: Number(used?.cpu ?? 0), memoryMib: Number(used?.memory ?? 0) },
    instanceCount: Number(used?.n ?? 0),
    ...(row.last_heartbeat === null ? {} : { lastHeartbeat: timestampFromDate(row.last_heartbeat) }),
    joinedAt: timestampFromDate(row.joined_at),
    driver: row.driver,
    subnet: row.subnet ?? '',
  });
}
