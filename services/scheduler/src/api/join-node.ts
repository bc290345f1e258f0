import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type JoinNodeRequest, type JoinNodeResponse, JoinNodeResponseSchema } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { invalidArgument, permissionDenied } from '@shellwego/kit/errors';
import type { Logger } from '@shellwego/kit/log';
import { labelProblems } from '../model/labels.js';
import { reservedHostnameProblem } from '../model/reserved-hostnames.js';
import type { JoinRefusals, RefusedJoin } from '../store/join-refusals.js';
import type { JoinTokens, TokenRefusal } from '../store/join-tokens.js';
import type { NodeCertificateLedger } from '../store/node-certificate-ledger.js';
import type { NodeCertificates } from '../store/node-certificates.js';
import type { NodeSubnets } from '../store/node-subnets.js';
import { type SchedulerDb, unreportedNodeRow } from '../store/tables.js';

export interface JoinDeps {
  readonly db: SchedulerDb;
  readonly tokens: JoinTokens;
  readonly joinRefusals: JoinRefusals;
  readonly certificates: NodeCertificates;
  readonly ledger: NodeCertificateLedger;
  readonly subnets: NodeSubnets;
  readonly logger: Logger;
}

const REFUSALS: Record<TokenRefusal, (id: string | undefined) => string> = {
  'malformed-token': () => 'the join token is not a shellwego join token (expected swj1.<id>.<secret>, as `shellwego node token create` prints it)',
  'unknown-token': (id) => `join token ${id ?? ''} is not known to this cluster; create one with \`shellwego node token create\``,
  'used-token': (id) => `join token ${id ?? ''} was already used; tokens are single-use, create a new one with \`shellwego node token create\``,
  'expired-token': (id) => `join token ${id ?? ''} has expired; create a new one with \`shellwego node token create\``,
};

/**
 * JoinNode: the token is checked before the CA signs anything, used up in
 * the same transaction that registers the node, and recorded in the
 * join_attempt table by token id, never the token: a join or a refused CSR
 * (the caller holds a valid token) one row each, refused tokens counted per
 * source and written in aggregate (`JoinRefusals`), since anyone can send them.
 */
export async function joinNode(deps: JoinDeps, request: JoinNodeRequest, source: string): Promise<JoinNodeResponse> {
  const hostname = request.info?.hostname ?? '';
  const askedLabels = request.info?.labels ?? {};
  const problems = labelProblems(askedLabels, 'info.labels');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (hostname.length > 253 || /[\0-\x1f]/.test(hostname)) problems.push('info.hostname: at most 253 printable characters');
  const reserved = reservedHostnameProblem(hostname);
  if (reserved !== undefined) problems.push(`info.hostname: ${JSON.stringify(hostname)} is reserved: ${reserved}; join with this host's own name`);
  if (request.csrPem === '') problems.push('csr_pem: required (a PEM PKCS#10 request for an ECDSA P-256 key made on the node)');
  if (problems.length > 0) throw invalidArgument(problems);

  const check = await deps.tokens.check(request.token);
  if (!check.ok) return refuse(deps, { source, outcome: check.refusal, tokenId: check.tokenId, hostname });

  const nodeId = newNodeId(hostname);
  let certificate;
  try {
    certificate = await deps.certificates.issue(request.csrPem, nodeId, hostname);
  } catch (error) {
    await deps.tokens.audit({ tokenId: check.tokenId, outcome: 'bad-csr', nodeId: undefined, hostname, source });
    deps.logger.warn({ tokenId: check.tokenId, hostname }, 'join refused: the CSR cannot be signed (the token stays unused)');
    throw error;
  }

  const used = await deps.db.transaction().execute(async (trx) => {
    const consumed = await deps.tokens.consume(trx, request.token, nodeId);
    if (!consumed.ok) return consumed;
    // Exhausted: RESOURCE_EXHAUSTED, and the transaction rolls back, so the token stays unused.
    const subnet = await deps.subnets.allocate(trx);
    await trx
      .insertInto('node')
      .values(
        unreportedNodeRow({
          id: nodeId,
          hostname,
          // Placement matches the token's labels only; what the node asks for is kept as what it reports.
          join_labels: JSON.stringify(consumed.labels),
          reported_labels: JSON.stringify(askedLabels),
          joined_at: new Date(),
          token_id: consumed.tokenId,
          cert_serial: certificate.serial,
          cert_expires_at: certificate.notAfter,
          capacity_ceiling: consumed.capacityCeiling === null ? null : JSON.stringify(consumed.capacityCeiling),
          subnet,
        }),
      )
      .execute();
    await deps.ledger.recordIssued(trx, nodeId, certificate.serial, certificate.notAfter);
    await deps.tokens.audit({ tokenId: consumed.tokenId, outcome: 'joined', nodeId, hostname, source }, trx);
    return { ...consumed, subnet };
  });
  if (!used.ok) return refuse(deps, { source, outcome: used.refusal, tokenId: used.tokenId, hostname });

  deps.logger.info({ node: nodeId, tokenId: used.tokenId, hostname, certSerial: certificate.serial, subnet: used.subnet }, 'node joined');
  return create(JoinNodeResponseSchema, {
    nodeId,
    certificatePem: certificate.certPem,
    caPem: deps.certificates.caPem,
    expiresAt: timestampFromDate(certificate.notAfter),
    subnet: used.subnet,
  });
}

function refuse(deps: JoinDeps, refused: RefusedJoin): never {
  deps.joinRefusals.record(refused);
  throw permissionDenied(REFUSALS[refused.outcome](refused.tokenId));
}

/** "worker-7-3fa2c1": readable in listings, unique by its random suffix, a valid SPIFFE path segment. */
function newNodeId(hostname: string): string {
  const base = (hostname.split('.')[0] ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${base === '' ? 'node' : base}-${randomBytes(4).toString('hex')}`;
}
