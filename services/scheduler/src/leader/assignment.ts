import { create } from '@bufbuild/protobuf';
import {
  AssignSchema,
  InstanceSpecSchema,
  RefreshSecretsSchema,
  type SessionResponse,
  SessionResponseSchema,
  StopSchema,
} from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { durationFromMs } from '../model/durations.js';
import type { IssueContext } from '../store/changes.js';
import type { InstanceRecord, VersionRecord } from './cluster-state.js';
import type { GrantIssuer, GrantSubject } from './grant-issuer.js';

/** The Assign message for an instance placed on `nodeId`, with fresh grants for that node: one for its secrets, one for its rootfs. */
export function assignMessage(instance: InstanceRecord, version: VersionRecord, nodeId: string, grants: GrantIssuer, issue: IssueContext): SessionResponse {
  const spec = version.spec;
  const subject = grantSubject(instance, version, nodeId, issue);
  const image = version.imageConfig;
  const argv = spec.command.length > 0 ? [...spec.command] : [...image.entrypoint, ...image.cmd];
  return create(SessionResponseSchema, {
    msg: {
      case: 'assign',
      value: create(AssignSchema, {
        spec: create(InstanceSpecSchema, {
          instanceId: instance.id,
          app: instance.app,
          version: instance.version,
          imageDigest: version.imageDigest,
          imageConfig: image,
          resources: { cpuMillis: instance.resources.cpuMillis, memoryMib: instance.resources.memoryMib },
          argv,
          env: { ...spec.env },
          secretNames: [...subject.secretNames],
          ...(spec.healthCheck === undefined ? {} : { healthCheck: spec.healthCheck }),
          healthDeadline: durationFromMs(version.limits.healthDeadlineMs),
        }),
        grant: grants.issue(subject, 'secrets'),
        rootfsGrant: grants.issue(subject, 'registry'),
        traceContext: { ...version.traceContext },
      }),
    },
  });
}

/** RefreshSecrets for an instance on `nodeId`: a fresh grant for the secrets of its version. */
export function refreshSecretsMessage(
  instance: InstanceRecord,
  version: VersionRecord,
  nodeId: string,
  grants: GrantIssuer,
  issue: IssueContext,
): SessionResponse {
  return create(SessionResponseSchema, {
    msg: {
      case: 'refreshSecrets',
      value: create(RefreshSecretsSchema, {
        instanceId: instance.id,
        grant: grants.issue(grantSubject(instance, version, nodeId, issue), 'secrets'),
      }),
    },
  });
}

function grantSubject(instance: InstanceRecord, version: VersionRecord, nodeId: string, issue: IssueContext): GrantSubject {
  return {
    instanceId: instance.id,
    app: instance.app,
    nodeId,
    secretNames: grantedSecretNames(version, issue),
    imageDigest: version.imageDigest,
    rootfsSha256: version.rootfsSha256,
  };
}

/**
 * The names an instance may read: those its app lists, and with
 * all_workspace_secrets every workspace secret at issue time as well.
 */
export function grantedSecretNames(version: VersionRecord, issue: IssueContext): readonly string[] {
  const listed = version.spec.secretNames;
  if (!version.spec.allWorkspaceSecrets) return listed;
  return [...listed, ...issue.workspaceSecretNames.filter((name) => !listed.includes(name))];
}

export function stopMessage(instanceId: string, graceMs: number, reason: string): SessionResponse {
  return create(SessionResponseSchema, {
    msg: { case: 'stop', value: create(StopSchema, { instanceId, gracePeriod: durationFromMs(graceMs), reason }) },
  });
}
