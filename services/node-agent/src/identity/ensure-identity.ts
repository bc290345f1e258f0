// The node's identity at start-up: the stored one, or a join with the configured token, retried
// while no scheduler answers (the control plane may still be starting). A refused token is final.

import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, ConnectError } from '@connectrpc/connect';
import { errnoCode } from '@shellwego/kit/errors';
import type { Logger } from '@shellwego/kit/log';
import { loadIdentity, type NodeIdentity, saveIdentity } from './identity-store.js';
import { joinCluster } from './join-cluster.js';

export interface JoinSettings {
  readonly stateDir: string;
  readonly schedulerUrls: readonly string[];
  readonly tlsCa: string;
  readonly joinToken: string | undefined;
  readonly joinTokenFile: string | undefined;
  readonly hostname: string;
  readonly labels: Readonly<Record<string, string>>;
}

const FINAL = new Set([Code.PermissionDenied, Code.InvalidArgument, Code.Unauthenticated]);
const MAX_RETRY_MS = 10_000;

export async function ensureIdentity(settings: JoinSettings, log: Logger, signal: AbortSignal): Promise<NodeIdentity> {
  const stored = await loadIdentity(settings.stateDir);
  if (stored !== undefined) {
    log.info({ node: stored.nodeId, certExpires: stored.notAfter.toISOString() }, 'node identity loaded');
    return stored;
  }
  const token = settings.joinToken ?? (settings.joinTokenFile === undefined ? undefined : (await readFile(settings.joinTokenFile, 'utf8')).trim());
  if (token === undefined || token === '') {
    throw new Error(
      'this node has not joined the cluster: set SHELLWEGO_NODE_AGENT_JOIN_TOKEN (or SHELLWEGO_NODE_AGENT_JOIN_TOKEN_FILE) to a token from `shellwego node token create`',
    );
  }
  let caPem: string;
  try {
    caPem = await readFile(settings.tlsCa, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read the cluster CA ${settings.tlsCa} (${errnoCode(error) ?? 'error'}): set SHELLWEGO_NODE_AGENT_TLS_CA to the CA certificate the scheduler's certificate chains to`,
    );
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const identity = await joinCluster({ schedulerUrls: settings.schedulerUrls, caPem, token, hostname: settings.hostname, labels: settings.labels }, log);
      await saveIdentity(settings.stateDir, identity);
      return identity;
    } catch (error) {
      const failure = ConnectError.from(error);
      if (FINAL.has(failure.code)) throw failure;
      const delay = Math.min(MAX_RETRY_MS, 250 * 2 ** Math.min(attempt, 6));
      log.warn({ err: failure.rawMessage, retryMs: delay }, 'cannot reach a scheduler to join yet; retrying');
      await sleep(delay, undefined, { signal });
    }
  }
}
