// Keeps the node certificate valid: renews it over mTLS once two thirds of its lifetime have
// passed, retrying with back-off, and hands the new identity to whoever holds clients built on
// the old one.
import type { Logger } from '@shellwego/kit/log';
import { type NodeIdentity, saveIdentity } from './identity-store.js';
import { renewCertificate } from './join-cluster.js';

const MIN_DELAY_MS = 1_000;
const MAX_RETRY_MS = 60_000;
// setTimeout takes at most a signed 32-bit delay; longer waits are chained.
const MAX_TIMER_MS = 2_147_000_000;

export interface RenewalOptions {
  readonly stateDir: string;
  readonly schedulerUrls: readonly string[];
  readonly log: Logger;
  readonly onRenewed: (identity: NodeIdentity) => void;
}

export class CertificateRenewal {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private identity: NodeIdentity,
    private readonly options: RenewalOptions,
  ) {}

  start(): void {
    this.schedule(renewalDelayMs(this.identity, Date.now()));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const wait = Math.min(Math.max(delayMs, MIN_DELAY_MS), MAX_TIMER_MS);
    this.timer = setTimeout(() => void this.renew(delayMs - wait), wait);
    this.timer.unref();
  }

  private async renew(stillToWaitMs: number): Promise<void> {
    if (stillToWaitMs > 0) {
      this.schedule(stillToWaitMs);
      return;
    }
    const log = this.options.log;
    try {
      const renewed = await renewCertificate(this.options.schedulerUrls, this.identity, log);
      await saveIdentity(this.options.stateDir, renewed);
      this.identity = renewed;
      log.info({ node: renewed.nodeId, certExpires: renewed.notAfter.toISOString() }, 'node certificate renewed');
      this.options.onRenewed(renewed);
      this.schedule(renewalDelayMs(renewed, Date.now()));
    } catch (error) {
      const left = this.identity.notAfter.getTime() - Date.now();
      const retry = Math.min(MAX_RETRY_MS, Math.max(MIN_DELAY_MS, left / 10));
      const level = left < 3_600_000 ? 'error' : 'warn';
      log[level](
        { err: error instanceof Error ? error.message : String(error), certExpires: this.identity.notAfter.toISOString(), retryMs: Math.round(retry) },
        left > 0
          ? 'node certificate renewal failed; retrying'
          : 'node certificate has expired and cannot be renewed: join the node again with a new token (remove the identity directory under the state dir)',
      );
      if (left > 0) this.schedule(retry);
    }
  }
}

/** Two thirds into the certificate's lifetime, counted from now. */
export function renewalDelayMs(identity: NodeIdentity, nowMs: number): number {
  const start = identity.notBefore.getTime();
  const end = identity.notAfter.getTime();
  return start + ((end - start) * 2) / 3 - nowMs;
}
