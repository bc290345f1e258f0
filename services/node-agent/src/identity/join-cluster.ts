// JoinNode and RenewNodeCertificate: a fresh P-256 key and CSR are made here for each, the key
// stays on this host; the scheduler answers with the node id (join) and a signed certificate.
import { Code, ConnectError } from '@connectrpc/connect';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { Logger } from '@shellwego/kit/log';
import { createCsr } from '@shellwego/kit/pki';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import { identityOf, type NodeIdentity } from './identity-store.js';

const CALL_TIMEOUT_MS = 15_000;

export interface JoinRequest {
  readonly schedulerUrls: readonly string[];
  /** The cluster CA the scheduler's certificate must chain to (there is no client certificate yet). */
  readonly caPem: string;
  readonly token: string;
  readonly hostname: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Tries each scheduler in turn; a refused token is final (it says which token and why). */
export async function joinCluster(request: JoinRequest, log: Logger): Promise<NodeIdentity> {
  const { csrPem, keyPem } = await createCsr(request.hostname);
  let lastError: ConnectError | undefined;
  for (const url of request.schedulerUrls) {
    const client = createMtlsClient(NodeService, { baseUrl: url, server: expectedService('scheduler'), tls: { caPem: request.caPem } });
    try {
      const response = await client.joinNode(
        { token: request.token, csrPem, info: { hostname: request.hostname, labels: { ...request.labels } } },
        { timeoutMs: CALL_TIMEOUT_MS },
      );
      const identity = identityOf(response.nodeId, { caPem: response.caPem || request.caPem, certPem: response.certificatePem, keyPem });
      log.info({ node: identity.nodeId, scheduler: url, certExpires: identity.notAfter.toISOString() }, 'joined the cluster');
      return identity;
    } catch (error) {
      lastError = ConnectError.from(error);
      if (lastError.code === Code.PermissionDenied || lastError.code === Code.InvalidArgument) break;
      log.warn({ scheduler: url, err: lastError.message }, 'join attempt failed; trying the next scheduler');
    }
  }
  throw new ConnectError(`cannot join the cluster: ${lastError?.rawMessage ?? 'no scheduler URL configured'}`, lastError?.code ?? Code.Unavailable);
}

/** A new key and certificate for the same node, asked for over mTLS with the current one. */
export async function renewCertificate(schedulerUrls: readonly string[], current: NodeIdentity, log: Logger): Promise<NodeIdentity> {
  const { csrPem, keyPem } = await createCsr(current.nodeId);
  let lastError: unknown;
  for (const url of schedulerUrls) {
    const client = createMtlsClient(NodeService, { baseUrl: url, server: expectedService('scheduler'), tls: current.tls });
    try {
      const response = await client.renewNodeCertificate({ csrPem }, { timeoutMs: CALL_TIMEOUT_MS });
      return identityOf(current.nodeId, { caPem: current.tls.caPem, certPem: response.certificatePem, keyPem });
    } catch (error) {
      lastError = error;
      log.warn({ scheduler: url, err: ConnectError.from(error).message }, 'certificate renewal attempt failed');
    }
  }
  throw lastError instanceof Error ? lastError : new Error('no scheduler URL configured');
}
