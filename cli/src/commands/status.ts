import { createClient } from '@connectrpc/connect';
import { Health, HealthCheckResponse_ServingStatus } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { createMtlsTransport, type ExpectedServer, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { type GlobalOptions, loadTls } from '../global-options.js';
import { printTable } from '../output.js';

export function statusCommand(status: Command): void {
  status.action(async (_options, command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    const tls = await loadTls(options);
    const endpoints: readonly (readonly [string, string, ExpectedServer])[] = [
      ['scheduler', options.scheduler, expectedService('scheduler')],
      ['secrets', options.secrets, expectedService('secrets')],
      ['registry', options.registry, expectedService('registry')],
      ['node-agent', options.nodeAgent, { kind: 'node' }],
    ];
    const results = await Promise.all(
      endpoints.map(async ([name, url, server]) => {
        const health = createClient(Health, createMtlsTransport({ baseUrl: url, server, tls }));
        try {
          const res = await health.check({ service: '' }, { timeoutMs: 3000 });
          return { service: name, endpoint: url, status: HealthCheckResponse_ServingStatus[res.status] ?? 'UNKNOWN' };
        } catch (error) {
          return { service: name, endpoint: url, status: 'UNREACHABLE', error: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
    printTable(
      options.output,
      results,
      ['SERVICE', 'ENDPOINT', 'STATUS'],
      results.map((r) => [r.service, r.endpoint, 'error' in r ? `${r.status} (${r.error})` : r.status]),
    );
    if (results.some((r) => r.status !== 'SERVING')) process.exitCode = 1;
  });
}
