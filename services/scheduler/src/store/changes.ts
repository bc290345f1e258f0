import { toBinary } from '@bufbuild/protobuf';
import { ImageConfigSchema } from '@shellwego/contracts/common/v1/workload_pb';
import { AppSpecSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import type { SessionResponse } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { sql } from 'kysely';
import type { AppRecord, InstanceRecord, NodeRecord, VersionRecord } from '../leader/cluster-state.js';
import type { EventDraft } from './event-drafts.js';
import { appendEvents } from './event-log.js';
import { revokeNodeCertificates } from './node-certificate-ledger.js';
import type { SchedulerTx, StoredDeployment } from './tables.js';

const INSTANCE_CHUNK = 5_000;

/** What grants may name beyond an app's own list, learnt once per unit of work after its commit. */
export interface IssueContext {
  /** Every workspace secret's name at issue time; filled only when a message asked for them. */
  readonly workspaceSecretNames: readonly string[];
}

export interface SendOptions {
  /** Its grant names every workspace secret, so their names are asked of the secrets service first. */
  readonly workspaceSecrets?: boolean;
  /** Called instead of building the message when those names cannot be had. */
  readonly unsent?: (reason: string) => void;
}

/** A message for a node, built only after the change that caused it is committed. */
export interface Outgoing extends SendOptions {
  readonly nodeId: string;
  readonly build: (issue: IssueContext) => SessionResponse | undefined;
}

/**
 * One unit of work of the active scheduler: the records it touched, the
 * events it produced and the messages to send once all of it is committed.
 * The in-memory records are changed first; `write` stores their new state in
 * one transaction; only then are messages sent, so a node never hears of an
 * assignment the database does not have.
 */
export class Changes {
  readonly now = new Date();
  readonly events: EventDraft[] = [];
  readonly outgoing: Outgoing[] = [];
  private readonly instances = new Set<InstanceRecord>();
  private readonly apps = new Set<AppRecord>();
  private readonly nodes = new Set<NodeRecord>();
  private readonly removedNodes: Array<{ id: string; by: string }> = [];
  private readonly newVersions: Array<{ app: string; version: VersionRecord }> = [];
  private readonly healthyVersions: Array<{ app: string; version: VersionRecord }> = [];

  instance(record: InstanceRecord): void {
    this.instances.add(record);
  }

  app(record: AppRecord): void {
    this.apps.add(record);
  }

  node(record: NodeRecord): void {
    this.nodes.add(record);
  }

  /** The node leaves for good: its row goes, a tombstone and the revocation of its certificates come. */
  removeNode(record: NodeRecord, by: string): void {
    this.nodes.delete(record);
    this.removedNodes.push({ id: record.id, by });
  }

  newVersion(app: string, version: VersionRecord): void {
    this.newVersions.push({ app, version });
  }

  versionHealthy(app: string, version: VersionRecord): void {
    this.healthyVersions.push({ app, version });
  }

  event(draft: EventDraft): void {
    this.events.push(draft);
  }

  send(nodeId: string, build: (issue: IssueContext) => SessionResponse | undefined, options: SendOptions = {}): void {
    this.outgoing.push({ nodeId, build, ...options });
  }

  /** Whether anything must be stored (messages alone need no transaction). */
  get needsWrite(): boolean {
    return (
      this.events.length > 0 ||
      this.instances.size > 0 ||
      this.apps.size > 0 ||
      this.nodes.size > 0 ||
      this.removedNodes.length > 0 ||
      this.newVersions.length > 0 ||
      this.healthyVersions.length > 0
    );
  }

  /** Nothing recorded: the work changed no state (or failed before changing any). */
  get isUntouched(): boolean {
    return !this.needsWrite && this.outgoing.length === 0;
  }

  async write(trx: SchedulerTx): Promise<void> {
    for (const { app, version } of this.newVersions) {
      await trx
        .insertInto('app_version')
        .values({
          app,
          version: version.version,
          spec: Buffer.from(toBinary(AppSpecSchema, version.spec)),
          image_digest: version.imageDigest,
          rootfs_sha256: version.rootfsSha256,
          image_config: Buffer.from(toBinary(ImageConfigSchema, version.imageConfig)),
          created_at: version.createdAt,
          created_by: version.createdBy,
          healthy_at: version.healthyAt,
        })
        .execute();
    }
    for (const { app, version } of this.healthyVersions) {
      await trx.updateTable('app_version').set({ healthy_at: version.healthyAt }).where('app', '=', app).where('version', '=', version.version).execute();
    }
    for (const app of this.apps) {
      const row = {
        name: app.name,
        created_at: app.createdAt,
        current_version: app.currentVersion,
        replicas: app.replicas,
        desired: JSON.stringify(Object.fromEntries(app.desired)),
        deployment: JSON.stringify(storedDeployment(app)),
        deleted_at: app.deletedAt,
      };
      await trx
        .insertInto('app')
        .values(row)
        .onConflict((oc) =>
          oc.column('name').doUpdateSet({
            created_at: row.created_at,
            current_version: row.current_version,
            replicas: row.replicas,
            desired: row.desired,
            deployment: row.deployment,
            deleted_at: row.deleted_at,
          }),
        )
        .execute();
    }
    await this.writeNodes(trx);
    for (const { id, by } of this.removedNodes) {
      await revokeNodeCertificates(trx, id, this.now);
      await trx.deleteFrom('node').where('id', '=', id).execute();
      await trx.insertInto('removed_node').values({ id, removed_at: this.now, removed_by: by }).execute();
    }
    await this.writeInstances(trx);
    await appendEvents(trx, this.events);
  }

  private async writeNodes(trx: SchedulerTx): Promise<void> {
    for (const node of this.nodes) {
      const owned = {
        hostname: node.hostname,
        join_labels: JSON.stringify(node.joinLabels),
        reported_labels: JSON.stringify(node.reportedLabels),
        cpu_millis: node.capacity.cpuMillis,
        memory_mib: node.capacity.memoryMib,
        max_instances: node.capacity.maxInstances,
        admin_state: node.adminState,
        down: node.down,
        reported: node.reported,
        last_heartbeat: node.lastHeartbeat,
        driver: node.driver,
        capacity_ceiling: node.capacityCeiling === null ? null : JSON.stringify(node.capacityCeiling),
      };
      // Join time and certificate columns belong to JoinNode and renewal: never overwritten here.
      await trx
        .insertInto('node')
        .values({
          id: node.id,
          ...owned,
          joined_at: node.joinedAt,
          token_id: null,
          cert_serial: null,
          cert_expires_at: null,
        })
        .onConflict((oc) => oc.column('id').doUpdateSet(owned))
        .execute();
    }
  }

  /** One upsert per chunk with one array parameter per column (see appendEvents). */
  private async writeInstances(trx: SchedulerTx): Promise<void> {
    const all = [...this.instances];
    for (let start = 0; start < all.length; start += INSTANCE_CHUNK) {
      const rows = all.slice(start, start + INSTANCE_CHUNK);
      const column = <T>(pick: (instance: InstanceRecord) => T) => rows.map(pick);
      await sql`INSERT INTO instance (id, app, version, node_id, state, reason, exit_code, address, cpu_millis, memory_mib, created_at, updated_at, healthy_since)
        SELECT * FROM unnest(
          ${column((i) => i.id)}::text[], ${column((i) => i.app)}::text[], ${column((i) => i.version)}::integer[],
          ${column((i) => i.nodeId ?? null)}::text[], ${column((i) => i.state)}::smallint[], ${column((i) => i.reason)}::text[],
          ${column((i) => i.exitCode ?? null)}::integer[], ${column((i) => i.address)}::text[], ${column((i) => i.resources.cpuMillis)}::integer[],
          ${column((i) => i.resources.memoryMib)}::integer[], ${column((i) => i.createdAt)}::timestamptz[],
          ${column((i) => i.updatedAt)}::timestamptz[], ${column((i) => i.healthySince ?? null)}::timestamptz[])
        ON CONFLICT (id) DO UPDATE SET node_id = excluded.node_id, state = excluded.state, reason = excluded.reason,
          exit_code = excluded.exit_code, address = excluded.address, updated_at = excluded.updated_at, healthy_since = excluded.healthy_since`.execute(trx);
    }
  }
}

function storedDeployment(app: AppRecord): StoredDeployment {
  const d = app.deployment;
  return {
    targetVersion: d.targetVersion,
    fromVersion: d.fromVersion,
    state: d.state,
    healthy: d.healthy,
    desired: d.desired,
    reason: d.reason,
    startedAt: d.startedAt?.toISOString() ?? null,
    finishedAt: d.finishedAt?.toISOString() ?? null,
  };
}
