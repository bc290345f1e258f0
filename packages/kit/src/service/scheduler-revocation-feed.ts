import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import type { RevocationFeed } from '../pki/index.js';
import { createMtlsClient, expectedService, type TlsMaterial } from '../rpc/index.js';

/**
 * The scheduler's revoked node certificates (ListRevokedCertificates), asked
 * of each replica in turn until one answers: any of them, active or
 * standby, reads the same database.
 */
export function schedulerRevocationFeed(urls: readonly string[], tls: TlsMaterial): RevocationFeed {
  const clients = urls.map((baseUrl) => createMtlsClient(NodeService, { baseUrl, server: expectedService('scheduler'), tls }));
  let preferred = 0;
  return {
    name: `the scheduler (${urls.join(', ')})`,
    async fetch(signal) {
      let lastError: unknown;
      for (let attempt = 0; attempt < clients.length; attempt++) {
        const index = (preferred + attempt) % clients.length;
        try {
          const { serials } = await (clients[index] as (typeof clients)[number]).listRevokedCertificates({}, { signal });
          preferred = index;
          return serials;
        } catch (error) {
          lastError = error;
          if (signal.aborted) break;
        }
      }
      throw lastError;
    },
  };
}
