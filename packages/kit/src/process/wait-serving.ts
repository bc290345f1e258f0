import { createClient } from '@connectrpc/connect';
import { Health, HealthCheckResponse_ServingStatus } from '@shellwego/contracts/grpc/health/v1/health_pb';
import { createMtlsTransport, type ExpectedServer, type TlsMaterial } from '../rpc/index.js';

/** Polls grpc.health.v1 Check until the expected server reports SERVING or the deadline passes. */
export async function waitServing(url: string, server: ExpectedServer, tls: TlsMaterial, deadlineMs: number, stop: AbortSignal): Promise<boolean> {
  const health = createClient(Health, createMtlsTransport({ baseUrl: url, server, tls }));
  const until = Date.now() + deadlineMs;
  while (Date.now() < until && !stop.aborted) {
    try {
      const res = await health.check({ service: '' }, { timeoutMs: 1000 });
      if (res.status === HealthCheckResponse_ServingStatus.SERVING) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}
