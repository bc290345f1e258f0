// One VM's GuestService client over its channel (one transport per VM, closed with it), and the
// wait for the guest agent to answer after boot.

import { setTimeout as sleep } from 'node:timers/promises';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { GuestService } from '@shellwego/contracts/guest/v1/guest_pb';
import { createGuestTransport, type GuestClientChannel, type GuestTransport } from '@shellwego/kit/vm-channel';

const HEALTH_ATTEMPT_MS = 5_000;
const RETRY_MS = 100;

export class GuestLink {
  readonly client: Client<typeof GuestService>;
  private readonly transport: GuestTransport;

  constructor(channel: GuestClientChannel, connectTimeoutMs: number) {
    this.transport = createGuestTransport(channel, { connectTimeoutMs });
    this.client = createClient(GuestService, this.transport);
  }

  /**
   * Resolves once the guest agent answers Health; rejects with DEADLINE_EXCEEDED (naming the last
   * error) when it has not by `deadlineMs` (epoch ms), or when the signal aborts.
   */
  async waitReady(deadlineMs: number, signal: AbortSignal): Promise<void> {
    let lastError = 'no answer yet';
    while (Date.now() < deadlineMs) {
      signal.throwIfAborted();
      const attemptMs = Math.max(1, Math.min(HEALTH_ATTEMPT_MS, deadlineMs - Date.now()));
      try {
        const health = await this.client.health({}, { timeoutMs: attemptMs, signal });
        if (health.agentAlive) return;
        lastError = 'the agent reported itself not alive';
      } catch (error) {
        signal.throwIfAborted();
        // A connect still in progress (a booting VM) carries on into the next attempt.
        lastError = ConnectError.from(error).rawMessage;
      }
      await sleep(Math.min(RETRY_MS, Math.max(0, deadlineMs - Date.now())), undefined, { signal }).catch(() => undefined);
    }
    throw new ConnectError(lastError, Code.DeadlineExceeded);
  }

  close(): void {
    this.transport.close();
  }
}
