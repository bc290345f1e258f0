import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type Capacity,
  CordonNodeResponseSchema,
  CreateJoinTokenResponseSchema,
  DrainNodeResponseSchema,
  ListNodesResponseSchema,
  ListRevokedCertificatesResponseSchema,
  type NodeService,
  RemoveNodeResponseSchema,
  RenewNodeCertificateResponseSchema,
  type SessionRequest,
  type SessionResponse,
  SetNodeCapacityCeilingResponseSchema,
  SetNodeLabelsResponseSchema,
} from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { peerAddressKey, peerCertificateKey, principalOf } from '@shellwego/kit/auth';
import { failedPrecondition, invalidArgument, mapHandlerErrors, notFound, permissionDenied } from '@shellwego/kit/errors';
import { normalizeSerial } from '@shellwego/kit/pki';
import { durationMs } from '../model/durations.js';
import { labelProblems } from '../model/labels.js';
import type { CapacityCeiling } from '../store/tables.js';
import { MAX_INT32 } from './app-spec.js';
import { joinNode } from './join-node.js';
import { listNodes } from './read-model.js';
import { toConnectError } from './rpc-errors.js';
import { requireLeader, type SchedulerDeps } from './scheduler-deps.js';

const DEFAULT_TOKEN_TTL_MS = 3_600_000;
const MIN_TOKEN_TTL_MS = 1_000;
const MAX_TOKEN_TTL_MS = 7 * 86_400_000;

export function nodeService(deps: SchedulerDeps): Partial<ServiceImpl<typeof NodeService>> {
  const handlers: Partial<ServiceImpl<typeof NodeService>> = {
    async createJoinToken(request, context) {
      const problems = labelProblems(request.labels, 'labels');
      const ttlMs = request.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : durationMs(request.ttl);
      if (request.ttl !== undefined && (request.ttl.seconds < 0n || request.ttl.nanos < 0 || ttlMs < MIN_TOKEN_TTL_MS || ttlMs > MAX_TOKEN_TTL_MS)) {
        problems.push('ttl: must be between 1s and 7 days (default 1h)');
      }
      problems.push(...ceilingProblems(request.capacityCeiling));
      if (problems.length > 0) throw invalidArgument(problems);
      const principal = principalOf(context);
      const creator = principal.kind === 'user' ? `user/${principal.name}` : principal.kind;
      const capacityCeiling = storedCeiling(request.capacityCeiling);
      const created = await deps.tokens.create({ ...request.labels }, capacityCeiling, ttlMs, creator);
      deps.logger.info({ tokenId: created.tokenId, by: creator, expiresAt: created.expiresAt.toISOString() }, 'join token created');
      return create(CreateJoinTokenResponseSchema, {
        token: created.token,
        tokenId: created.tokenId,
        expiresAt: timestampFromDate(created.expiresAt),
      });
    },

    joinNode: (request, context) => joinNode(deps, request, context.values.get(peerAddressKey)),

    async renewNodeCertificate(request, context) {
      const nodeId = callingNode(context);
      // Only the node's current certificate renews, and only once: a superseded or copied one cannot mint a successor.
      const presented = context.values.get(peerCertificateKey).serial;
      const row = await deps.db.selectFrom('node').select(['hostname', 'cert_serial']).where('id', '=', nodeId).executeTakeFirst();
      if (row === undefined) throw permissionDenied(`node ${nodeId} is not registered with this cluster; join it with a new token`);
      if (row.cert_serial === null || normalizeSerial(row.cert_serial) !== normalizeSerial(presented)) {
        throw permissionDenied(`certificate ${normalizeSerial(presented)} is not node ${nodeId}'s current certificate; only the current one may renew`);
      }
      const issued = await deps.certificates.issue(request.csrPem, nodeId, row.hostname);
      const current = row.cert_serial;
      const recorded = await deps.db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('node')
          .set({ cert_serial: issued.serial, cert_expires_at: issued.notAfter })
          .where('id', '=', nodeId)
          .where('cert_serial', '=', current)
          .executeTakeFirst();
        if (updated.numUpdatedRows !== 1n) return false;
        await deps.ledger.recordIssued(trx, nodeId, issued.serial, issued.notAfter);
        return true;
      });
      if (!recorded) throw permissionDenied(`certificate ${normalizeSerial(presented)} was renewed concurrently; only one renewal per certificate`);
      deps.logger.info({ node: nodeId, certSerial: issued.serial }, 'node certificate renewed');
      return create(RenewNodeCertificateResponseSchema, { certificatePem: issued.certPem, expiresAt: timestampFromDate(issued.notAfter) });
    },

    async listNodes() {
      return create(ListNodesResponseSchema, { nodes: await listNodes(deps.db) });
    },

    async cordonNode(request) {
      requireNodeId(request.nodeId);
      const leader = await requireLeader(deps, 'cordon nodes');
      await leader.cordon(request.nodeId, request.uncordon);
      const [node] = await listNodes(deps.db, request.nodeId);
      if (node === undefined) throw notFound(`node ${request.nodeId} not found`);
      return create(CordonNodeResponseSchema, { node });
    },

    async setNodeLabels(request) {
      requireNodeId(request.nodeId);
      const problems = labelProblems(request.set, 'set');
      for (const key of request.remove) {
        if (key in request.set) problems.push(`remove[${JSON.stringify(key)}]: also in set; say one or the other`);
      }
      if (problems.length > 0) throw invalidArgument(problems);
      const leader = await requireLeader(deps, 'label nodes');
      await leader.setLabels(request.nodeId, request.set, request.remove);
      const [node] = await listNodes(deps.db, request.nodeId);
      if (node === undefined) throw notFound(`node ${request.nodeId} not found`);
      deps.logger.info({ node: request.nodeId, set: Object.keys(request.set), remove: request.remove }, 'node labels changed by an admin');
      return create(SetNodeLabelsResponseSchema, { node });
    },

    async removeNode(request, context) {
      requireNodeId(request.nodeId);
      const principal = principalOf(context);
      const by = principal.kind === 'user' ? `user/${principal.name}` : principal.kind;
      const leader = await requireLeader(deps, 'remove nodes');
      const instancesMoving = await leader.removeNode(request.nodeId, by);
      return create(RemoveNodeResponseSchema, { revokedSerials: await deps.ledger.serialsOf(request.nodeId), instancesMoving });
    },

    async listRevokedCertificates() {
      return create(ListRevokedCertificatesResponseSchema, { serials: await deps.ledger.revokedSerials() });
    },

    async setNodeCapacityCeiling(request) {
      requireNodeId(request.nodeId);
      const problems = ceilingProblems(request.capacityCeiling);
      if (problems.length > 0) throw invalidArgument(problems);
      const leader = await requireLeader(deps, 'set capacity ceilings');
      const ceiling = storedCeiling(request.capacityCeiling);
      await leader.setCapacityCeiling(request.nodeId, ceiling);
      const [node] = await listNodes(deps.db, request.nodeId);
      if (node === undefined) throw notFound(`node ${request.nodeId} not found`);
      deps.logger.info({ node: request.nodeId, ceiling }, 'node capacity ceiling set by an admin');
      return create(SetNodeCapacityCeilingResponseSchema, { node });
    },

    async drainNode(request) {
      requireNodeId(request.nodeId);
      const leader = await requireLeader(deps, 'drain nodes');
      return create(DrainNodeResponseSchema, { instancesMoving: await leader.drain(request.nodeId) });
    },

    async *session(requests: AsyncIterable<SessionRequest>, context: HandlerContext): AsyncGenerator<SessionResponse> {
      const nodeId = callingNode(context);
      const leader = await requireLeader(deps, 'hold node sessions (reconnect to the active scheduler)');
      const inbound = requests[Symbol.asyncIterator]();
      const first = await inbound.next();
      if (first.done === true || first.value.msg.case !== 'hello') {
        throw failedPrecondition('the first message of a Session must be Hello (capacity, labels, running instances)');
      }
      const session = await leader.openSession(nodeId, first.value.msg.value);
      // Inbound messages are handled as they come; the generator below only writes.
      void (async () => {
        try {
          for (;;) {
            const next = await inbound.next();
            if (next.done === true) return;
            leader.onSessionMessage(session, next.value);
          }
        } catch (error) {
          deps.logger.debug({ node: nodeId, err: error instanceof Error ? error.message : String(error) }, 'session request stream ended');
        } finally {
          leader.closeSession(session);
        }
      })();
      try {
        yield* session.messages(AbortSignal.any([context.signal, deps.shuttingDown]));
      } finally {
        leader.closeSession(session);
      }
    },
  };
  return mapHandlerErrors(handlers, toConnectError);
}

function ceilingProblems(ceiling: Capacity | undefined): string[] {
  const problems: string[] = [];
  for (const [field, value] of Object.entries(ceiling ?? {})) {
    if (typeof value === 'number' && value > MAX_INT32) problems.push(`capacity_ceiling.${field}: must be at most ${MAX_INT32}, got ${value}`);
  }
  return problems;
}

/** The ceiling as stored; absent or every field 0 is no ceiling. */
function storedCeiling(ceiling: Capacity | undefined): CapacityCeiling | null {
  if (ceiling === undefined || (ceiling.cpuMillis === 0 && ceiling.memoryMib === 0 && ceiling.maxInstances === 0)) return null;
  return { cpuMillis: ceiling.cpuMillis, memoryMib: ceiling.memoryMib, maxInstances: ceiling.maxInstances };
}

function callingNode(context: HandlerContext): string {
  const principal = principalOf(context);
  if (principal.kind !== 'node') throw permissionDenied('only node certificates may call this');
  return principal.id;
}

function requireNodeId(nodeId: string): void {
  if (nodeId === '') throw invalidArgument(['node_id: required']);
}
