import { toJson } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { AppService, type Instance, InstanceSchema } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { type GlobalOptions, loadTls } from '../global-options.js';
import { printTable } from '../output.js';

/** One instance on a line, as `app get` lists them: id, version, node, address, state and why. */
export function instanceLine(i: Instance): string {
  const reason = i.exitCode === undefined ? i.reason : `${i.reason} (exit code ${i.exitCode})`;
  return [i.id, `v${i.version}`, i.nodeId || '-', i.address || '-', InstanceState[i.state] ?? String(i.state), reason].join('  ').trimEnd();
}

/** `shellwego instance ls`: where instances run, at which address and in which state. */
export function instanceCommands(instance: Command): void {
  instance
    .command('ls')
    .description('list instances (live ones unless --all)')
    .option('--app <name>', 'only this app')
    .option('--node <id>', 'only this node')
    .option('--all', 'include STOPPED, FAILED and LOST instances')
    .action(async (options: { app?: string; node?: string; all?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const client = createMtlsClient(AppService, {
        baseUrl: globals.scheduler,
        server: expectedService('scheduler'),
        tls: await loadTls(globals),
        defaultTimeoutMs: 30_000,
      });
      const { instances } = await client.listInstances({ app: options.app ?? '', nodeId: options.node ?? '', includeTerminal: options.all === true });
      printTable(
        globals.output,
        instances.map((i) => toJson(InstanceSchema, i)),
        ['ID', 'APP', 'VERSION', 'NODE', 'ADDRESS', 'STATE', 'SINCE', 'REASON'],
        instances.map((i) => [
          i.id,
          i.app,
          `v${i.version}`,
          i.nodeId || '-',
          i.address || '-',
          InstanceState[i.state] ?? String(i.state),
          i.updatedAt === undefined ? '-' : timestampDate(i.updatedAt).toISOString(),
          i.exitCode === undefined ? i.reason : `${i.reason} (exit code ${i.exitCode})`,
        ]),
      );
    });
}
