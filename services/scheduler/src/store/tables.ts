// The scheduler's tables as kysely sees them (see migrations.ts for the DDL).
import type { ColumnType, Generated, Insertable, Kysely, Transaction } from 'kysely';

/** jsonb: an object when read, a JSON string when written. */
type Json<T> = ColumnType<T, string, string>;

/** An admin's bound on a node's capacity; a field of 0 leaves that resource unbounded. */
export interface CapacityCeiling {
  readonly cpuMillis: number;
  readonly memoryMib: number;
  readonly maxInstances: number;
}

/** Nullable jsonb ceiling: null when the admin set none. */
type CeilingColumn = ColumnType<CapacityCeiling | null, string | null, string | null>;

export interface JoinTokenTable {
  id: string;
  token_hash: Buffer;
  labels: Json<Record<string, string>>;
  capacity_ceiling: CeilingColumn;
  created_by: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
  used_at: Date | null;
  used_by_node: string | null;
}

export interface JoinAttemptTable {
  id: Generated<bigint>;
  at: ColumnType<Date, Date | undefined, never>;
  token_id: string | null;
  outcome: string;
  node_id: string | null;
  hostname: string;
  /** The caller's address; null on rows written before it was recorded. */
  source: string | null;
  /** Attempts this row stands for: 1 for a join, more for refusals aggregated over an interval (from `at` to `last_at`). */
  count: ColumnType<number, number | undefined, never>;
  last_at: Date | null;
}

export type AdminState = 'READY' | 'CORDONED' | 'DRAINING';

export interface NodeTable {
  id: string;
  hostname: string;
  join_labels: Json<Record<string, string>>;
  reported_labels: Json<Record<string, string>>;
  cpu_millis: number;
  memory_mib: number;
  max_instances: number;
  admin_state: AdminState;
  down: boolean;
  /** False until the node's first Hello: capacity unknown, state UNSPECIFIED. */
  reported: boolean;
  last_heartbeat: Date | null;
  driver: string;
  joined_at: Date;
  token_id: string | null;
  cert_serial: string | null;
  cert_expires_at: Date | null;
  capacity_ceiling: CeilingColumn;
  /** Its instance subnet (CIDR) out of the cluster CIDR, unique; null until given (written by JoinNode and NodeSubnets only). */
  subnet: ColumnType<string | null, string | null | undefined, string | null>;
}

/**
 * The row of a node that has not said Hello yet (capacity and driver unknown, READY, not down), with
 * what its caller knows: JoinNode the token's labels and the certificate, a CA-issued node only its id.
 */
export function unreportedNodeRow(known: Pick<Insertable<NodeTable>, 'id' | 'joined_at'> & Partial<Insertable<NodeTable>>): Insertable<NodeTable> {
  return {
    hostname: '',
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
    token_id: null,
    cert_serial: null,
    cert_expires_at: null,
    capacity_ceiling: null,
    ...known,
  };
}

/** Every certificate issued to a node (join and each renewal); revoked_at set when the node is removed. */
export interface NodeCertificateTable {
  /** Normalized hex (see normalizeSerial). */
  serial: string;
  node_id: string;
  issued_at: ColumnType<Date, Date | undefined, never>;
  not_after: Date;
  revoked_at: Date | null;
}

/** A removed node's id: it never opens a session or renews again. */
export interface RemovedNodeTable {
  id: string;
  removed_at: Date;
  removed_by: string;
}

/** The deployment of an app, stored as jsonb. */
export interface StoredDeployment {
  targetVersion: number;
  fromVersion: number;
  /** DeploymentState enum value. */
  state: number;
  healthy: number;
  desired: number;
  reason: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface AppTable {
  name: string;
  created_at: Date;
  current_version: number;
  replicas: number;
  /** version -> instances wanted of it. */
  desired: Json<Record<string, number>>;
  deployment: Json<StoredDeployment>;
  deleted_at: Date | null;
}

export interface AppVersionTable {
  app: string;
  version: number;
  /** AppSpec, protobuf binary. */
  spec: Buffer;
  image_digest: string;
  /** "sha256:<hex>" of the image's rootfs, pinned in registry grants; '' for versions stored before it was recorded. */
  rootfs_sha256: string;
  /** ImageConfig, protobuf binary. */
  image_config: Buffer;
  created_at: Date;
  created_by: string;
  healthy_at: Date | null;
}

export interface InstanceTable {
  id: string;
  app: string;
  version: number;
  node_id: string | null;
  /** InstanceState enum value. */
  state: number;
  reason: string;
  exit_code: number | null;
  /** IPv4 address on its node's network, from the node's reports; '' when it has none or has ended. */
  address: ColumnType<string, string | undefined, string>;
  cpu_millis: number;
  memory_mib: number;
  created_at: Date;
  updated_at: Date;
  healthy_since: Date | null;
}

export interface EventTable {
  cursor: Generated<bigint>;
  time: Date;
  app: string;
  node_id: string;
  instance_id: string;
  message: string;
  /** The Event message (without cursor and time), protobuf binary. */
  detail: Buffer;
}

export interface LeaderTable {
  id: number;
  holder: string;
  url: string;
  since: Date;
}

export interface SchedulerTables {
  join_token: JoinTokenTable;
  join_attempt: JoinAttemptTable;
  node: NodeTable;
  node_certificate: NodeCertificateTable;
  removed_node: RemovedNodeTable;
  app: AppTable;
  app_version: AppVersionTable;
  instance: InstanceTable;
  event: EventTable;
  leader: LeaderTable;
}

export type SchedulerDb = Kysely<SchedulerTables>;
export type SchedulerTx = Transaction<SchedulerTables>;
