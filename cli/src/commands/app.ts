import { create, type MessageInitShape, toJson } from '@bufbuild/protobuf';
import { DurationSchema, timestampDate } from '@bufbuild/protobuf/wkt';
import type { HealthCheckSchema } from '@shellwego/contracts/common/v1/workload_pb';
import {
  type App,
  AppSchema,
  AppService,
  AppSpecSchema,
  AppVersionSchema,
  DeploymentState,
  InstanceSchema,
  PlacementStrategy,
} from '@shellwego/contracts/scheduler/v1/apps_pb';
import { parseDuration } from '@shellwego/kit/config';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { CliError, type GlobalOptions, loadTls } from '../global-options.js';
import { printTable, printValue } from '../output.js';
import { cpuMillis, memoryMib } from '../quantities.js';
import { instanceLine } from './instance.js';
import { collect, keyValues } from './node.js';

interface DeployOptions {
  image: string;
  replicas: string;
  cpu: string;
  memory: string;
  env: string[];
  secret: string[];
  allWorkspaceSecrets?: boolean;
  port: string[];
  health?: string;
  command?: string;
  label: string[];
  spread?: boolean;
  maxSurge?: string;
  maxUnavailable?: string;
  minHealthy?: string;
  healthDeadline?: string;
  autoRollback: boolean;
}

/** `shellwego app ...`: deploy, list, inspect, scale, roll back and remove apps. */
export function appCommands(app: Command): void {
  app
    .command('deploy')
    .description('create an app or roll out a new version of it')
    .argument('<name>', 'app name: a lowercase DNS label')
    .requiredOption('--image <ref>', 'image reference, name:tag or name@sha256:...')
    .option('--replicas <n>', 'instances to run', '1')
    .option('--cpu <cpu>', 'CPU per instance: cores (0.5) or millicores (500m)', '500m')
    .option('--memory <size>', 'memory per instance: MiB (256), or with Mi/Gi', '256Mi')
    .option('--env <key=value>', 'environment variable (repeatable); wins over a secret of the same name', collect, [] as string[])
    .option('--secret <name>', 'secret the instances receive as an environment variable (repeatable)', collect, [] as string[])
    .option(
      '--all-workspace-secrets',
      'the instances also receive every workspace secret current at each start and refresh (the Aegis model; by default only the --secret names)',
    )
    .option('--port <port>', 'port the workload listens on (repeatable)', collect, [] as string[])
    .option('--health <probe>', 'health check: tcp:PORT, http:PORT/PATH or exec:COMMAND ARGS...')
    .option('--command <command>', "command line replacing the image's entrypoint and cmd (split on spaces)")
    .option('--label <key=value>', 'node label every instance requires (repeatable)', collect, [] as string[])
    .option('--spread', 'prefer the emptiest nodes instead of bin-packing')
    .option('--max-surge <n>', 'new instances allowed above --replicas during a rollout (default 1)')
    .option('--max-unavailable <n>', 'instances allowed below --replicas during a rollout (default 0)')
    .option('--min-healthy <duration>', 'how long a new instance must stay healthy to count (default 5s)')
    .option('--health-deadline <duration>', 'how long a new instance may take to become healthy (default 5m)')
    .option('--no-auto-rollback', 'leave a failed rollout where it stopped instead of restoring the previous version')
    .action(async (name: string, options: DeployOptions, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const spec = create(AppSpecSchema, {
        image: options.image,
        replicas: count(options.replicas, '--replicas'),
        resources: { cpuMillis: cpuMillis(options.cpu, '--cpu'), memoryMib: memoryMib(options.memory, '--memory') },
        env: keyValues(options.env, '--env'),
        secretNames: options.secret,
        allWorkspaceSecrets: options.allWorkspaceSecrets === true,
        command: options.command === undefined ? [] : options.command.split(' ').filter((part) => part !== ''),
        ports: options.port.map((port) => count(port, '--port')),
        ...(options.health === undefined ? {} : { healthCheck: healthCheck(options.health) }),
        ...(strategyGiven(options) ? { updateStrategy: updateStrategy(options) } : {}),
        placement: { requiredLabels: keyValues(options.label, '--label'), strategy: options.spread ? PlacementStrategy.SPREAD : PlacementStrategy.BINPACK },
      });
      const { app: deployed } = await (await appClient(globals)).deployApp({ name, spec });
      printValue(globals.output, deployed === undefined ? {} : toJson(AppSchema, deployed), describeDeploy(deployed));
    });

  app
    .command('ls')
    .description('list apps')
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { apps } = await (await appClient(globals)).listApps({});
      printTable(
        globals.output,
        apps.map((a) => toJson(AppSchema, a)),
        ['NAME', 'VERSION', 'IMAGE', 'REPLICAS', 'HEALTHY', 'DEPLOYMENT'],
        apps.map((a) => [
          a.name,
          `v${a.current?.version ?? 0}`,
          a.current?.spec?.image ?? '',
          String(a.current?.spec?.replicas ?? 0),
          String(a.instanceCounts.HEALTHY ?? 0),
          deploymentText(a),
        ]),
      );
    });

  app
    .command('get')
    .description('show an app: its current version, rollout, and its live instances with their addresses')
    .argument('<name>', 'the app')
    .action(async (name: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { app: found, versions, instances } = await (await appClient(globals)).getApp({ name });
      if (found === undefined) throw new CliError(`app ${name} not found`);
      const spec = found.current?.spec;
      const lines = [
        `app ${found.name} (created ${found.createdAt === undefined ? '-' : timestampDate(found.createdAt).toISOString()})`,
        `  version     v${found.current?.version ?? 0}: ${spec?.image ?? ''} -> ${found.current?.imageDigest ?? ''}`,
        `  replicas    ${spec?.replicas ?? 0} x ${spec?.resources?.cpuMillis ?? 0}m CPU, ${spec?.resources?.memoryMib ?? 0} MiB`,
        `  instances   ${
          Object.entries(found.instanceCounts)
            .map(([state, n]) => `${n} ${state}`)
            .join(', ') || 'none'
        }`,
        `  deployment  ${deploymentText(found)}${found.deployment?.reason ? ` (${found.deployment.reason})` : ''}`,
        `  versions    ${versions.map((v) => `v${v.version} ${v.spec?.image ?? ''}`).join(', ')}`,
        ...instances.map((i) => `  instance    ${instanceLine(i)}`),
      ];
      printValue(
        globals.output,
        {
          app: toJson(AppSchema, found),
          versions: versions.map((v) => toJson(AppVersionSchema, v)),
          instances: instances.map((i) => toJson(InstanceSchema, i)),
        },
        lines.join('\n'),
      );
    });

  app
    .command('scale')
    .description('change the number of instances of the current version')
    .argument('<name>', 'the app')
    .argument('<replicas>', 'the new count (0 stops every instance but keeps the app)')
    .action(async (name: string, replicas: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { app: scaled } = await (await appClient(globals)).scaleApp({ name, replicas: count(replicas, 'replicas') });
      printValue(globals.output, scaled === undefined ? {} : toJson(AppSchema, scaled), `app ${name} scaled to ${replicas}`);
    });

  app
    .command('rollback')
    .description('roll back to the previous version that was rolled out healthy')
    .argument('<name>', 'the app')
    .action(async (name: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { app: rolled } = await (await appClient(globals)).rollbackApp({ name });
      printValue(globals.output, rolled === undefined ? {} : toJson(AppSchema, rolled), `app ${name} rolling back to v${rolled?.current?.version ?? 0}`);
    });

  app
    .command('refresh-secrets')
    .description("send the app's running instances their current secret values (restarts each workload); use after `secret set`")
    .argument('<name>', 'the app')
    .action(async (name: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { instancesRefreshed } = await (await appClient(globals)).refreshAppSecrets({ name });
      printValue(globals.output, { instancesRefreshed }, `sent a secrets refresh to ${instancesRefreshed} instance(s) of ${name}`);
    });

  app
    .command('rm')
    .description('stop every instance and delete the app (its versions and events are kept)')
    .argument('<name>', 'the app')
    .action(async (name: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { instancesStopped } = await (await appClient(globals)).deleteApp({ name });
      printValue(globals.output, { name, instancesStopped }, `app ${name} deleted; ${instancesStopped} instance(s) stopping`);
    });
}

async function appClient(globals: GlobalOptions) {
  return createMtlsClient(AppService, {
    baseUrl: globals.scheduler,
    server: expectedService('scheduler'),
    tls: await loadTls(globals),
    defaultTimeoutMs: 60_000,
  });
}

function describeDeploy(app: App | undefined): string {
  if (app === undefined) return 'deployed';
  const version = app.current;
  return `app ${app.name} v${version?.version ?? 0} deploying: ${version?.spec?.image ?? ''} pinned to ${version?.imageDigest ?? ''} (follow with \`shellwego events --app ${app.name} --follow\`)`;
}

function deploymentText(app: App): string {
  const d = app.deployment;
  if (d === undefined || d.state === DeploymentState.UNSPECIFIED) return '-';
  const state = (DeploymentState[d.state] ?? String(d.state)).toLowerCase().replace('_', ' ');
  const from = d.fromVersion === 0 ? '' : ` from v${d.fromVersion}`;
  return `v${d.targetVersion}${from}: ${state}, ${d.healthy}/${d.desired} healthy`;
}

function count(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new CliError(`${flag}: "${text}" is not a whole number`);
  return Number(text);
}

function healthCheck(text: string): MessageInitShape<typeof HealthCheckSchema> {
  const [kind, ...rest] = text.split(':');
  const value = rest.join(':');
  if (kind === 'tcp') return { probe: { case: 'tcp', value: { port: count(value, '--health tcp') } } };
  if (kind === 'http') {
    const slash = value.indexOf('/');
    const port = slash < 0 ? value : value.slice(0, slash);
    return { probe: { case: 'http', value: { port: count(port, '--health http'), path: slash < 0 ? '/' : value.slice(slash) } } };
  }
  if (kind === 'exec' && value.trim() !== '') return { probe: { case: 'exec', value: { argv: value.split(' ').filter((part) => part !== '') } } };
  throw new CliError(`--health: "${text}" is not tcp:PORT, http:PORT/PATH or exec:COMMAND`);
}

function strategyGiven(options: DeployOptions): boolean {
  return [options.maxSurge, options.maxUnavailable, options.minHealthy, options.healthDeadline].some((v) => v !== undefined) || !options.autoRollback;
}

function updateStrategy(options: DeployOptions) {
  const duration = (text: string | undefined, flag: string) => {
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) throw new CliError(`${flag}: "${text}" is not a duration like 10s or 5m`);
    return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
  };
  const minHealthy = duration(options.minHealthy, '--min-healthy');
  const deadline = duration(options.healthDeadline, '--health-deadline');
  return {
    maxSurge: options.maxSurge === undefined ? 0 : count(options.maxSurge, '--max-surge'),
    maxUnavailable: options.maxUnavailable === undefined ? 0 : count(options.maxUnavailable, '--max-unavailable'),
    ...(minHealthy === undefined ? {} : { minHealthyTime: minHealthy }),
    ...(deadline === undefined ? {} : { healthDeadline: deadline }),
    autoRollback: options.autoRollback,
  };
}
