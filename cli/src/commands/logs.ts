import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type Client, ConnectError } from '@connectrpc/connect';
import { NodeAgentService } from '@shellwego/contracts/agent/v1/agent_pb';
import { InstanceState, OutputStream } from '@shellwego/contracts/common/v1/workload_pb';
import { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { createMtlsClient, expectedService, type TlsMaterial } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { CliError, type GlobalOptions, loadTls } from '../global-options.js';

const ENDED = new Set([InstanceState.STOPPED, InstanceState.FAILED, InstanceState.LOST]);

/** `shellwego logs INSTANCE_OR_APP [--follow]`: a workload's output, from the node agent that runs it. */
export function logsCommand(logs: Command): void {
  logs
    .argument('<instance-or-app>', 'an instance id, or an app name (each of its instances on that node)')
    .option('-f, --follow', 'keep printing new output (Ctrl-C stops)')
    .action(async (target: string, options: { follow?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const tls = await loadTls(globals);
      const agent = createMtlsClient(NodeAgentService, { baseUrl: globals.nodeAgent, server: { kind: 'node' }, tls });
      const status = await agent.getNodeStatus({}, { timeoutMs: 10_000 });
      let ids = status.instances.filter((i) => i.instanceId === target).map((i) => i.instanceId);
      if (ids.length === 0) {
        const ofApp = status.instances.filter((i) => i.app === target);
        const live = ofApp.filter((i) => !ENDED.has(i.state));
        ids = (live.length > 0 ? live : ofApp).map((i) => i.instanceId);
      }
      if (ids.length === 0) throw new CliError(await notHere(globals, tls, target, status.nodeId));
      await Promise.all(ids.map((id) => printLogs(agent, id, options.follow === true, ids.length > 1 ? `[${id}] ` : '', globals.output === 'json')));
    });
}

async function printLogs(agent: Client<typeof NodeAgentService>, instanceId: string, follow: boolean, prefix: string, json: boolean): Promise<void> {
  // Output arrives in chunks cut anywhere: a prefix goes before each complete line only.
  const partial = new Map<OutputStream, string>();
  for await (const chunk of agent.streamInstanceLogs({ instanceId, follow }, { timeoutMs: 0 })) {
    const out = chunk.stream === OutputStream.STDERR ? process.stderr : process.stdout;
    if (json) {
      const time = chunk.time === undefined ? undefined : timestampDate(chunk.time).toISOString();
      const stream = chunk.stream === OutputStream.STDERR ? 'stderr' : 'stdout';
      process.stdout.write(`${JSON.stringify({ instance: instanceId, stream, time, data: Buffer.from(chunk.data).toString('utf8') })}\n`);
    } else if (prefix === '') {
      out.write(chunk.data);
    } else {
      const text = (partial.get(chunk.stream) ?? '') + Buffer.from(chunk.data).toString('utf8');
      const lines = text.split('\n');
      partial.set(chunk.stream, lines.pop() ?? '');
      for (const line of lines) out.write(`${prefix}${line}\n`);
    }
  }
  for (const [stream, rest] of partial) {
    if (rest !== '') (stream === OutputStream.STDERR ? process.stderr : process.stdout).write(`${prefix}${rest}\n`);
  }
}

/** Why nothing matched on this node, and where the scheduler says it runs. */
async function notHere(globals: GlobalOptions, tls: TlsMaterial, target: string, nodeId: string): Promise<string> {
  const here = `the node agent at ${globals.nodeAgent} (node ${nodeId || 'not joined yet'}) has no instance or app "${target}"`;
  try {
    const scheduler = createMtlsClient(AppService, { baseUrl: globals.scheduler, server: expectedService('scheduler'), tls, defaultTimeoutMs: 10_000 });
    const { instances } = await scheduler.listInstances({ includeTerminal: true });
    const nodes = [
      ...new Set(
        instances
          .filter((i) => i.id === target || i.app === target)
          .map((i) => i.nodeId)
          .filter((n) => n !== ''),
      ),
    ];
    if (nodes.length > 0) return `${here}; the scheduler places it on node ${nodes.join(', ')}: pass --node-agent with that node's agent URL`;
  } catch (error) {
    return `${here} (the scheduler could not be asked where it runs: ${ConnectError.from(error).rawMessage})`;
  }
  return `${here}; \`shellwego instance ls --all\` lists every instance`;
}
