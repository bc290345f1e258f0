import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { type Health, HealthCheckResponse_ServingStatus as ServingStatus } from '@shellwego/contracts/grpc/health/v1/health_pb';

export { ServingStatus };

/**
 * Serving status per service name ("" is the whole server), as the standard
 * grpc.health.v1 protocol reports it, with change notification for Watch.
 */
export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Set<() => void>();

  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const listener of this.listeners) listener();
  }

  /** Sets every known service, and the server as a whole. */
  setAll(status: ServingStatus): void {
    for (const service of [...this.statuses.keys()]) this.set(service, status);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  entries(): [string, ServingStatus][] {
    return [...this.statuses.entries()];
  }

  /** Yields the current status, then each change, until `signal` aborts. */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
    let wake: (() => void) | undefined;
    const listener = () => wake?.();
    this.listeners.add(listener);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      let last: ServingStatus | undefined;
      while (!signal.aborted) {
        const current = this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          last = current;
          yield current;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      this.listeners.delete(listener);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

export function healthService(status: HealthStatus, shuttingDown: AbortSignal): ServiceImpl<typeof Health> {
  return {
    check(request) {
      const current = status.get(request.service);
      if (current === undefined) {
        throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
      }
      return { status: current };
    },
    list() {
      return { statuses: Object.fromEntries(status.entries().map(([name, s]) => [name, { status: s }])) };
    },
    async *watch(request, context) {
      // Watch streams never end on their own; stop them when the client goes
      // away or the server starts shutting down.
      const stop = AbortSignal.any([context.signal, shuttingDown]);
      for await (const current of status.watch(request.service, stop)) {
        yield { status: current };
      }
    },
  };
}
