import type { NodeRecord } from '../leader/cluster-state.js';
import type { LeaderContext } from '../leader/leader-context.js';
import type { Changes } from '../store/changes.js';
import { markDown } from './node-lifecycle.js';

/**
 * Marks DOWN every node whose last sign of life (Hello, heartbeat or event)
 * is older than heartbeat interval + grace, and returns them so their
 * sessions, if any still look open, can be ended. A session that stays open
 * without heartbeats is no sign of life: a host that froze keeps its TCP
 * connection for minutes.
 */
export function detectFailures(ctx: LeaderContext, changes: Changes, nowMs: number): NodeRecord[] {
  const down: NodeRecord[] = [];
  for (const node of ctx.state.nodes.values()) {
    if (!node.reported || node.down) continue;
    const silentMs = nowMs - node.lastSeenMs;
    if (silentMs <= ctx.heartbeatDeadlineMs) continue;
    markDown(ctx, changes, node, `no heartbeat for ${(silentMs / 1000).toFixed(1)} s (deadline ${ctx.heartbeatDeadlineMs / 1000} s)`);
    down.push(node);
  }
  return down;
}

/** Whether any node is past its deadline (cheap check before queueing work). */
export function anySilent(ctx: LeaderContext, nowMs: number): boolean {
  for (const node of ctx.state.nodes.values()) {
    if (node.reported && !node.down && nowMs - node.lastSeenMs > ctx.heartbeatDeadlineMs) return true;
  }
  return false;
}
