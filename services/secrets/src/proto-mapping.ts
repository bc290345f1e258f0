import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { AuditEvent, GetMasterKeyStatusResponse, SecretInfo, SecretVersion } from '@shellwego/contracts/secrets/v1/secrets_pb';
import {
  AuditAction,
  AuditEventSchema,
  AuditOutcome,
  GetMasterKeyStatusResponseSchema,
  SecretInfoSchema,
  SecretVersionSchema,
} from '@shellwego/contracts/secrets/v1/secrets_pb';
import { invalidArgument } from '@shellwego/kit/errors';
import type { AuditRecord, AuditAction as DomainAction, AuditOutcome as DomainOutcome } from './audit-log.js';
import type { MasterKeyStatus } from './key-rotation.js';
import type { SecretInfoRecord, SecretVersionRecord } from './secret-store.js';
import { secretScopeToProto } from './validation/index.js';

export function secretInfoToProto(info: SecretInfoRecord): SecretInfo {
  return create(SecretInfoSchema, {
    scope: secretScopeToProto(info.scope),
    name: info.name,
    latestVersion: info.latestVersion,
    updatedAt: timestampFromDate(info.updatedAt),
    updatedBy: info.updatedBy,
    digest: info.digest,
    versionCount: info.versionCount,
  });
}

export function secretVersionToProto(version: SecretVersionRecord): SecretVersion {
  return create(SecretVersionSchema, {
    version: version.version,
    createdAt: timestampFromDate(version.createdAt),
    createdBy: version.createdBy,
    digest: version.digest,
    kekId: version.kekId,
  });
}

const actions: Record<DomainAction, AuditAction> = {
  set: AuditAction.SET,
  delete: AuditAction.DELETE,
  resolve: AuditAction.RESOLVE,
  rotate: AuditAction.ROTATE,
};

const outcomes: Record<DomainOutcome, AuditOutcome> = {
  granted: AuditOutcome.GRANTED,
  denied: AuditOutcome.DENIED,
};

export function auditEventToProto(record: AuditRecord): AuditEvent {
  return create(AuditEventSchema, {
    id: record.id,
    time: timestampFromDate(record.time),
    principal: record.principal,
    action: actions[record.action],
    ...(record.scope === undefined ? {} : { scope: secretScopeToProto(record.scope) }),
    secrets: record.secrets.map(({ name, version }) => ({ name, version })),
    instanceId: record.instanceId,
    outcome: outcomes[record.outcome],
    reason: record.reason,
  });
}

/** A filter value from the contract: undefined for UNSPECIFIED, INVALID_ARGUMENT for an unknown number. */
export function auditActionFilter(action: AuditAction): DomainAction | undefined {
  if (action === AuditAction.UNSPECIFIED) return undefined;
  const found = (Object.keys(actions) as DomainAction[]).find((key) => actions[key] === action);
  if (found === undefined) throw invalidArgument(`action: ${action} is not a known audit action`);
  return found;
}

export function auditOutcomeFilter(outcome: AuditOutcome): DomainOutcome | undefined {
  if (outcome === AuditOutcome.UNSPECIFIED) return undefined;
  const found = (Object.keys(outcomes) as DomainOutcome[]).find((key) => outcomes[key] === outcome);
  if (found === undefined) throw invalidArgument(`outcome: ${outcome} is not a known audit outcome`);
  return found;
}

export function masterKeyStatusToProto(status: MasterKeyStatus): GetMasterKeyStatusResponse {
  return create(GetMasterKeyStatusResponseSchema, {
    currentKekId: status.currentKekId,
    versions: status.versions.map((version) => ({
      kekId: version.kekId,
      ...(version.createdAt === undefined ? {} : { createdAt: timestampFromDate(version.createdAt) }),
      wrappedCount: version.wrappedCount,
      encryptions: version.encryptions,
    })),
    rewrapRunning: status.rewrapRunning,
    rewrapDone: status.rewrapDone,
    rewrapTotal: status.rewrapTotal,
  });
}
