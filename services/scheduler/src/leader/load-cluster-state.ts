import { fromBinary } from '@bufbuild/protobuf';
import { ImageConfigSchema, type InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { AppSpecSchema, type DeploymentState } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { Logger } from '@shellwego/kit/log';
import { rolloutLimits } from '../api/app-spec.js';
import { TERMINAL_STATES } from '../model/instance-states.js';
import { PlacementError } from '../placement/index.js';
import type { SchedulerDb, StoredDeployment } from '../store/tables.js';
import { type AppRecord, ClusterState, engineState, type NodeRecord, nodeLabels } from './cluster-state.js';

/**
 * Rebuilds the active scheduler's state from the database, as on takeover.
 * Every node gets a full heartbeat deadline from `now` to reconnect: its
 * agent may only just be learning that this process is the active one.
 */
export async function loadClusterState(db: SchedulerDb, logger: Logger, now: Date): Promise<ClusterState> {
  const state = new ClusterState();
  for (const row of await db.selectFrom('node').selectAll().execute()) {
    const node: NodeRecord = {
      id: row.id,
      hostname: row.hostname,
      joinLabels: row.join_labels,
      reportedLabels: row.reported_labels,
      capacity: { cpuMillis: row.cpu_millis, memoryMib: row.memory_mib, maxInstances: row.max_instances },
      reportedCapacity: { cpuMillis: row.cpu_millis, memoryMib: row.memory_mib, maxInstances: row.max_instances },
      capacityCeiling: row.capacity_ceiling,
      adminState: row.admin_state,
      down: row.down,
      reported: row.reported,
      driver: row.driver,
      joinedAt: row.joined_at,
      lastSeenMs: now.getTime(),
      lastHeartbeat: row.last_heartbeat,
      heartbeatDirty: false,
    };
    state.nodes.set(node.id, node);
    if (node.reported) state.engine.upsertNode({ id: node.id, state: engineState(node), labels: nodeLabels(node), capacity: node.capacity });
  }

  for (const row of await db.selectFrom('app').selectAll().execute()) {
    const app: AppRecord = {
      name: row.name,
      createdAt: row.created_at,
      currentVersion: row.current_version,
      replicas: row.replicas,
      desired: new Map(Object.entries(row.desired).map(([version, count]) => [Number(version), count])),
      deployment: deploymentFrom(row.deployment),
      deletedAt: row.deleted_at,
      versions: new Map(),
      rolloutFailure: undefined,
      restartFailures: 0,
      restartNotBeforeMs: 0,
    };
    state.apps.set(app.name, app);
  }
  for (const row of await db.selectFrom('app_version').selectAll().execute()) {
    const spec = fromBinary(AppSpecSchema, row.spec);
    state.apps.get(row.app)?.versions.set(row.version, {
      version: row.version,
      spec,
      imageDigest: row.image_digest,
      rootfsSha256: row.rootfs_sha256,
      imageConfig: fromBinary(ImageConfigSchema, row.image_config),
      createdAt: row.created_at,
      createdBy: row.created_by,
      limits: rolloutLimits(spec),
      healthyAt: row.healthy_at,
    });
  }

  const live = await db
    .selectFrom('instance')
    .selectAll()
    .where('state', 'not in', TERMINAL_STATES as number[])
    .orderBy('created_at')
    .execute();
  for (const row of live) {
    const instance = {
      id: row.id,
      app: row.app,
      version: row.version,
      nodeId: row.node_id ?? undefined,
      state: row.state as InstanceState,
      reason: row.reason,
      exitCode: row.exit_code ?? undefined,
      address: row.address,
      resources: { cpuMillis: row.cpu_millis, memoryMib: row.memory_mib },
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      healthySince: row.healthy_since ?? undefined,
    };
    state.addLive(instance);
    if (instance.nodeId === undefined) continue;
    try {
      state.engine.assign({ instanceId: instance.id, app: instance.app, nodeId: instance.nodeId, resources: instance.resources });
    } catch (error) {
      if (!(error instanceof PlacementError)) throw error;
      logger.warn({ instance: instance.id, node: instance.nodeId, err: error.message }, 'instance not counted against its node');
    }
  }
  return state;
}

function deploymentFrom(stored: StoredDeployment) {
  return {
    targetVersion: stored.targetVersion,
    fromVersion: stored.fromVersion,
    state: stored.state as DeploymentState,
    healthy: stored.healthy,
    desired: stored.desired,
    reason: stored.reason,
    startedAt: stored.startedAt === null ? null : new Date(stored.startedAt),
    finishedAt: stored.finishedAt === null ? null : new Date(stored.finishedAt),
  };
}
