import { toJson } from '@bufbuild/protobuf';
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import { NodeState } from '@shellwego/contracts/scheduler/v1/events_pb';
import { CreateJoinTokenResponseSchema, NodeSchema, NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { parseDuration } from '@shellwego/kit/config';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { CliError, type GlobalOptions, loadTls } from '../global-options.js';
import { printTable, printValue } from '../output.js';
import { cpuMillis, memoryMib } from '../quantities.js';

/** `shellwego node ...`: join tokens, the node list, labels, cordon and drain. */
export function nodeCommands(node: Command): void {
  node
    .command('token')
    .description('join tokens for new nodes')
    .command('create')
    .description('create a single-use join token (shown once; only its hash is kept)')
    .option('--label <key=value>', 'label the joining node gets (repeatable)', collect, [] as string[])
    .option('--ttl <duration>', 'how long the token is valid, e.g. 30m or 24h (default 1h, at most 7d)')
    .option('--max-cpu <cpu>', 'the most CPU placement counts on the node, whatever it reports (0.5 or 500m)')
    .option('--max-memory <size>', 'the most memory placement counts on the node (256Mi, 8Gi)')
    .option('--max-instances <n>', 'the most instances placed on the node')
    .action(async (options: { label: string[]; ttl?: string; maxCpu?: string; maxMemory?: string; maxInstances?: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const ttlMs = options.ttl === undefined ? undefined : parseDuration(options.ttl);
      if (options.ttl !== undefined && ttlMs === undefined) throw new CliError(`--ttl: "${options.ttl}" is not a duration like 30m or 24h`);
      const client = await nodeClient(globals);
      const created = await client.createJoinToken({
        labels: keyValues(options.label, '--label'),
        ...capacityCeiling(options),
        ...(ttlMs === undefined ? {} : { ttl: { seconds: BigInt(Math.floor(ttlMs / 1000)), nanos: (ttlMs % 1000) * 1_000_000 } }),
      });
      printValue(
        globals.output,
        toJson(CreateJoinTokenResponseSchema, created),
        [
          created.token,
          '',
          `token ${created.tokenId}, valid until ${when(created.expiresAt)}, single use; it is not shown again.`,
          'give it to the node agent of the host that should join',
        ].join('\n'),
      );
    });

  node
    .command('ls')
    .description('list nodes with their state, capacity, what is placed on them and their instance subnet')
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { nodes } = await (await nodeClient(globals)).listNodes({});
      printTable(
        globals.output,
        nodes.map((n) => toJson(NodeSchema, n)),
        ['ID', 'HOSTNAME', 'STATE', 'CPU (m)', 'MEMORY (MiB)', 'INSTANCES', 'SUBNET', 'LABELS', 'LAST HEARTBEAT'],
        nodes.map((n) => [
          n.id,
          n.hostname,
          stateName(n.state),
          `${n.allocated?.cpuMillis ?? 0}/${n.capacity?.cpuMillis ?? 0}`,
          `${n.allocated?.memoryMib ?? 0}/${n.capacity?.memoryMib ?? 0}`,
          `${n.instanceCount}/${n.capacity?.maxInstances ?? 0}`,
          n.subnet || '-',
          labelList(n.labels),
          n.lastHeartbeat === undefined ? '-' : when(n.lastHeartbeat),
        ]),
      );
    });

  for (const [name, uncordon, description] of [
    ['cordon', false, 'stop placing new instances on a node'],
    ['uncordon', true, 'let a cordoned or drained node take new instances again'],
  ] as const) {
    node
      .command(name)
      .description(description)
      .argument('<node>', 'the node id, as `shellwego node ls` shows it')
      .action(async (nodeId: string, _options: unknown, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { node: changed } = await (await nodeClient(globals)).cordonNode({ nodeId, uncordon });
        printValue(
          globals.output,
          changed === undefined ? {} : toJson(NodeSchema, changed),
          `node ${nodeId} is ${stateName(changed?.state ?? NodeState.UNSPECIFIED)}`,
        );
      });
  }

  node
    .command('label')
    .description('set or remove the labels placement matches on a node (what a node reports about itself is never matched)')
    .argument('<node>', 'the node id')
    .argument('[labels...]', 'key=value labels to set')
    .option('--remove <key>', 'label key to remove (repeatable)', collect, [] as string[])
    .action(async (nodeId: string, labels: string[], options: { remove: string[] }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (labels.length === 0 && options.remove.length === 0) throw new CliError('give key=value labels to set and/or --remove KEY');
      const { node: changed } = await (await nodeClient(globals)).setNodeLabels({ nodeId, set: keyValues(labels, 'label'), remove: options.remove });
      printValue(
        globals.output,
        changed === undefined ? {} : toJson(NodeSchema, changed),
        `node ${nodeId} labels: ${labelList(changed?.labels ?? {}) || '(none)'}`,
      );
    });

  node
    .command('ceiling')
    .description('bound what placement counts on a node, whatever it reports (instances already placed stay)')
    .argument('<node>', 'the node id')
    .option('--max-cpu <cpu>', 'the most CPU placement counts on the node (0.5 or 500m)')
    .option('--max-memory <size>', 'the most memory placement counts on the node (256Mi, 8Gi)')
    .option('--max-instances <n>', 'the most instances placed on the node')
    .option('--lift', 'remove the ceiling: placement counts on what the node reports')
    .action(async (nodeId: string, options: { maxCpu?: string; maxMemory?: string; maxInstances?: string; lift?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const ceiling = capacityCeiling(options);
      if ((options.lift === true) === 'capacityCeiling' in ceiling) throw new CliError('give --max-cpu, --max-memory and/or --max-instances, or --lift');
      const { node: changed } = await (await nodeClient(globals)).setNodeCapacityCeiling({ nodeId, ...ceiling });
      const bound = changed?.capacityCeiling;
      printValue(
        globals.output,
        changed === undefined ? {} : toJson(NodeSchema, changed),
        bound === undefined
          ? `node ${nodeId}: no capacity ceiling`
          : `node ${nodeId}: ceiling ${bound.cpuMillis || '-'}m CPU, ${bound.memoryMib || '-'} MiB, ${bound.maxInstances || '-'} instances; placement counts on ${changed?.capacity?.cpuMillis ?? 0}m, ${changed?.capacity?.memoryMib ?? 0} MiB, ${changed?.capacity?.maxInstances ?? 0} instances`,
      );
    });

  node
    .command('drain')
    .description('cordon a node and move its instances elsewhere, each stopped only once its replacement is healthy')
    .argument('<node>', 'the node id')
    .action(async (nodeId: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { instancesMoving } = await (await nodeClient(globals)).drainNode({ nodeId });
      printValue(
        globals.output,
        { nodeId, instancesMoving },
        `draining ${nodeId}: ${instancesMoving} instance(s) moving (follow with \`shellwego events --node ${nodeId} --follow\`)`,
      );
    });

  node
    .command('rm')
    .description('remove a node for good: revoke every certificate it has held, end its session and move its instances elsewhere')
    .argument('<node>', 'the node id')
    .action(async (nodeId: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { revokedSerials, instancesMoving } = await (await nodeClient(globals)).removeNode({ nodeId });
      printValue(
        globals.output,
        { nodeId, revokedSerials, instancesMoving },
        `removed ${nodeId}: ${revokedSerials.length} certificate(s) revoked, ${instancesMoving} instance(s) moving; the host must join again with a new token`,
      );
    });
}

async function nodeClient(globals: GlobalOptions) {
  return createMtlsClient(NodeService, {
    baseUrl: globals.scheduler,
    server: expectedService('scheduler'),
    tls: await loadTls(globals),
    defaultTimeoutMs: 30_000,
  });
}

function stateName(state: NodeState): string {
  return state === NodeState.UNSPECIFIED ? 'JOINED' : (NodeState[state] ?? String(state));
}

/** A capacity ceiling from --max-* flags; none given: no ceiling (the node's report is used as sent). */
function capacityCeiling(options: { maxCpu?: string; maxMemory?: string; maxInstances?: string }) {
  if (options.maxCpu === undefined && options.maxMemory === undefined && options.maxInstances === undefined) return {};
  const instances = options.maxInstances === undefined ? 0 : Number(options.maxInstances);
  if (!Number.isInteger(instances) || instances < 0) throw new CliError(`--max-instances: "${options.maxInstances}" is not a whole number`);
  return {
    capacityCeiling: {
      cpuMillis: options.maxCpu === undefined ? 0 : cpuMillis(options.maxCpu, '--max-cpu'),
      memoryMib: options.maxMemory === undefined ? 0 : memoryMib(options.maxMemory, '--max-memory'),
      maxInstances: instances,
    },
  };
}

function labelList(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function when(timestamp: Timestamp | undefined): string {
  return timestamp === undefined ? '-' : timestampDate(timestamp).toISOString();
}

/** "k=v" flags into a map; a malformed one names the flag. */
export function keyValues(pairs: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`${flag}: "${pair}" is not key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
