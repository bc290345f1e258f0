import type { RunningService } from '@shellwego/testing/platform';

/**
 * Resolves with the first line `service` printed at index `from` or later
 * that `matches`. Wakes on the child's output rather than polling: the
 * platform's line reader listens to the same streams and was attached first,
 * so by the time this listener runs, a chunk's complete lines are in
 * `service.lines`.
 */
export function awaitLogLine(service: RunningService, from: number, matches: (line: string) => boolean, timeoutMs = 5_000): Promise<string> {
  const find = () => service.lines.slice(from).find(matches);
  const already = find();
  if (already !== undefined) return Promise.resolve(already);
  const streams = [service.process.child.stdout, service.process.child.stderr].filter((s) => s !== null);
  return new Promise((resolve, reject) => {
    const stopListening = () => {
      clearTimeout(timer);
      for (const stream of streams) stream.off('data', onData);
    };
    const onData = () => {
      const line = find();
      if (line === undefined) return;
      stopListening();
      resolve(line);
    };
    const timer = setTimeout(() => {
      stopListening();
      reject(new Error(`${service.name} printed no matching line within ${timeoutMs} ms`));
    }, timeoutMs);
    for (const stream of streams) stream.on('data', onData);
  });
}

/** Matches the request log line of one RPC ("<service>/<method>"). */
export function rpcLogLine(rpc: string): (line: string) => boolean {
  return (line) => {
    try {
      const entry: unknown = JSON.parse(line);
      return typeof entry === 'object' && entry !== null && (entry as { rpc?: unknown }).rpc === rpc;
    } catch {
      return false;
    }
  };
}
