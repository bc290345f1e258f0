import type { ColumnType, Generated } from 'kysely';

/** How a scope is stored: a kind and the app name ('' for the workspace). */
export type ScopeKindColumn = 'workspace' | 'app';

/** One secret's identity and its version counter, which survives deletion so numbers are never reused. */
export interface SecretsTable {
  scope_kind: ScopeKindColumn;
  app: string;
  name: string;
  last_version: number;
}

/** One retained version: the sealed blob (never plaintext), its KEK id and value digest. */
export interface SecretVersionsTable {
  scope_kind: ScopeKindColumn;
  app: string;
  name: string;
  version: number;
  blob: Buffer;
  kek_id: string;
  digest: string;
  /** True once `digest` keys in scope and name (every version written since migration 0002). */
  digest_subject_bound: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: ColumnType<Date, never, never>;
  created_by: string;
}

/** Master key versions this database has seen, with the encryptions counted against each. */
export interface KeksTable {
  id: string;
  created_at: ColumnType<Date, never, never>;
  encryptions: ColumnType<bigint, never, never>;
}

/** The one row holding the sealed key behind value digests. */
export interface DigestKeyTable {
  id: number;
  blob: Buffer;
  kek_id: string;
}

export interface AuditedSecretJson {
  name: string;
  version: number;
}

export type AuditActionColumn = 'set' | 'delete' | 'resolve' | 'rotate';
export type AuditOutcomeColumn = 'granted' | 'denied';

/** Append-only (a trigger refuses UPDATE and DELETE). Never holds a value. */
export interface AuditEventsTable {
  id: Generated<bigint>;
  time: ColumnType<Date, never, never>;
  principal: string;
  action: AuditActionColumn;
  scope_kind: ScopeKindColumn | null;
  app: string | null;
  secrets: ColumnType<AuditedSecretJson[], string, never>;
  instance_id: string;
  outcome: AuditOutcomeColumn;
  reason: string;
}

/**
 * The state of the newest master key rotation (one row). A replica running
 * the re-wrap holds a lease it renews; an expired lease with no finish time
 * is an interrupted rotation that the next start resumes.
 */
export interface RotationTable {
  id: number;
  holder: string | null;
  lease_until: Date | null;
  target_kek_id: string | null;
  started_at: Date | null;
  started_by: string;
  finished_at: Date | null;
  done: bigint;
  total: bigint;
  error: string;
}

export interface SecretsDatabase {
  secrets: SecretsTable;
  secret_versions: SecretVersionsTable;
  keks: KeksTable;
  digest_key: DigestKeyTable;
  audit_events: AuditEventsTable;
  rotation: RotationTable;
}
