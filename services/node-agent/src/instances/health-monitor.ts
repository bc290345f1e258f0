// Polls GuestService.Health for one instance: quickly until the workload is first healthy (so
// HEALTHY is reported promptly), then at the app's health check interval.
import { type Client, ConnectError } from '@connectrpc/connect';
import type { GuestService, HealthResponse } from '@shellwego/contracts/guest/v1/guest_pb';

const EAGER_INTERVAL_MS = 200;
// The guest runs the probe inside Health; allow for the probe's own timeout.
const CALL_SLACK_MS = 5_000;

export type HealthOutcome = { readonly ok: true; readonly report: HealthResponse } | { readonly ok: false; readonly error: string };

export interface HealthMonitorOptions {
  readonly intervalMs: number;
  readonly probeTimeoutMs: number;
  /** Called after each poll; returns whether the workload has been healthy yet (slows polling). */
  readonly onOutcome: (outcome: HealthOutcome) => boolean;
}

export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly client: Client<typeof GuestService>,
    private readonly options: HealthMonitorOptions,
  ) {}

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.poll(), delayMs);
  }

  private async poll(): Promise<void> {
    let outcome: HealthOutcome;
    try {
      outcome = { ok: true, report: await this.client.health({}, { timeoutMs: this.options.probeTimeoutMs + CALL_SLACK_MS }) };
    } catch (error) {
      outcome = { ok: false, error: ConnectError.from(error).rawMessage };
    }
    if (this.stopped) return;
    const settled = this.options.onOutcome(outcome);
    this.schedule(settled ? this.options.intervalMs : Math.min(EAGER_INTERVAL_MS, this.options.intervalMs));
  }
}
