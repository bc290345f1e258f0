// Waiting on instances the way an operator watches them: scheduler events (WatchEvents) for
// states, the node agent's StreamInstanceLogs for output.
import type { Client } from '@connectrpc/connect';
import type { NodeAgentService } from '@shellwego/contracts/agent/v1/agent_pb';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import type { Event } from '@shellwego/contracts/scheduler/v1/events_pb';
import type { EventStream } from '@shellwego/testing/scheduler/event-stream';

/** The states an instance went through, in event order. */
export function statesOf(events: readonly Event[], instanceId: string): InstanceState[] {
  return events.flatMap((e) => (e.instanceId === instanceId && e.detail.case === 'instanceState' ? [e.detail.value.to] : []));
}

export function isInstanceState(e: Event, app: string, state: InstanceState): boolean {
  return e.app === app && e.detail.case === 'instanceState' && e.detail.value.to === state;
}

/** The first event of an instance of `app` reaching `state` (from event index `from`). */
export function instanceReached(stream: EventStream, app: string, state: InstanceState, timeoutMs: number, from = 0): Promise<Event> {
  return stream.waitFor((e) => isInstanceState(e, app, state), timeoutMs, `an instance of ${app} ${InstanceState[state]}`, from);
}

export function reasonOf(e: Event): string {
  return e.detail.case === 'instanceState' ? e.detail.value.reason : '';
}

/** Follows StreamInstanceLogs until the output contains `text`; returns the output so far. */
export async function logsUntil(agent: Client<typeof NodeAgentService>, instanceId: string, text: string, timeoutMs: number): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let seen = '';
  try {
    for await (const chunk of agent.streamInstanceLogs({ instanceId, follow: true }, { signal: abort.signal, timeoutMs: 0 })) {
      seen += Buffer.from(chunk.data).toString('utf8');
      if (seen.includes(text)) return seen;
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  throw new Error(`instance ${instanceId}: "${text}" did not appear in its output within ${timeoutMs} ms; output so far:\n${seen}`);
}

/**
 * The first line (from index `from`) matching `predicate` of a process's output. Processes give
 * no event for a log line, so this looks every 50 ms.
 */
export async function lineAppears(
  lines: readonly string[],
  predicate: (line: string) => boolean,
  from: number,
  timeoutMs: number,
  what: string,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = lines.slice(from).find(predicate);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for a log line: ${what}; last lines:\n${lines.slice(-10).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
