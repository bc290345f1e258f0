// NodeAgentService: the node's own view (GetNodeStatus) and a workload's output
// (StreamInstanceLogs) for operators; authorization comes from the contract.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  GetNodeStatusResponseSchema,
  LocalInstanceSchema,
  type NodeAgentService,
  type StreamInstanceLogsRequest,
  type StreamInstanceLogsResponse,
  StreamInstanceLogsResponseSchema,
} from '@shellwego/contracts/agent/v1/agent_pb';
import { invalidArgument, notFound } from '@shellwego/kit/errors';
import type { Reconciler } from './instances/reconciler.js';

export interface NodeStatusSource {
  readonly nodeId: () => string;
  readonly driver: string;
  readonly driverReason: string;
  readonly connected: () => boolean;
  readonly reconciler: Reconciler;
  /** Aborted on shutdown: followed log streams end. */
  readonly shuttingDown: AbortSignal;
}

/** Served from the start; calls wait until the agent is ready (its driver may still be preparing). */
export function nodeAgentService(ready: Promise<NodeStatusSource>): Partial<ServiceImpl<typeof NodeAgentService>> {
  return {
    async getNodeStatus() {
      const source = await ready;
      return create(GetNodeStatusResponseSchema, {
        nodeId: source.nodeId(),
        driver: source.driver,
        driverReason: source.driverReason,
        connected: source.connected(),
        instances: source.reconciler.views().map((v) =>
          create(LocalInstanceSchema, {
            instanceId: v.instanceId,
            app: v.app,
            state: v.state,
            startedAt: timestampFromDate(v.assignedAt),
            reason: v.reason,
            address: v.address,
          }),
        ),
      });
    },

    async *streamInstanceLogs(request: StreamInstanceLogsRequest, context: HandlerContext): AsyncGenerator<StreamInstanceLogsResponse> {
      if (request.instanceId === '') throw invalidArgument('instance_id: required');
      const source = await ready;
      const found = source.reconciler.find(request.instanceId);
      if (found === undefined) {
        throw notFound(
          `instance ${request.instanceId} does not run on this node (${source.nodeId() || 'not joined yet'}) and did not end here recently; \`shellwego instance ls\` shows where it runs`,
        );
      }
      if (found.output === undefined) return;
      // Not AbortSignal.any: on Node 20 it keeps every combined signal alive as long as the
      // long-lived shutdown signal.
      const done = new AbortController();
      const end = () => done.abort();
      context.signal.addEventListener('abort', end);
      source.shuttingDown.addEventListener('abort', end);
      if (context.signal.aborted || source.shuttingDown.aborted) end();
      try {
        for await (const chunk of found.output.read(request.follow, done.signal)) {
          yield create(StreamInstanceLogsResponseSchema, { stream: chunk.stream, data: chunk.data, time: timestampFromDate(chunk.time) });
        }
      } finally {
        context.signal.removeEventListener('abort', end);
        source.shuttingDown.removeEventListener('abort', end);
      }
    },
  };
}
