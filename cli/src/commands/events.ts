import { toJsonString } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { AppService } from '@shellwego/contracts/scheduler/v1/apps_pb';
import { type Event, EventSchema } from '@shellwego/contracts/scheduler/v1/events_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { CliError, type GlobalOptions, loadTls } from '../global-options.js';

interface EventsOptions {
  app?: string;
  node?: string;
  instance?: string;
  after?: string;
  follow?: boolean;
}

/** `shellwego events`: the scheduler's event log, one line per event; `--follow` keeps streaming. */
export function eventsCommand(events: Command): void {
  events
    .option('--app <name>', 'only this app')
    .option('--node <id>', 'only this node')
    .option('--instance <id>', 'only this instance')
    .option('--after <cursor>', 'start after this cursor (the first column), e.g. to resume')
    .option('-f, --follow', 'keep streaming new events until interrupted')
    .action(async (options: EventsOptions, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (options.after !== undefined && !/^\d+$/.test(options.after)) throw new CliError(`--after: "${options.after}" is not a cursor`);
      const client = createMtlsClient(AppService, { baseUrl: globals.scheduler, server: expectedService('scheduler'), tls: await loadTls(globals) });
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      const color = globals.output === 'text' && process.stdout.isTTY === true;
      try {
        const stream = client.watchEvents(
          {
            app: options.app ?? '',
            nodeId: options.node ?? '',
            instanceId: options.instance ?? '',
            afterCursor: BigInt(options.after ?? '0'),
            follow: options.follow === true,
          },
          { signal: stop.signal, timeoutMs: 0 },
        );
        for await (const { event } of stream) {
          if (event === undefined) continue;
          // JSON output is one object per line, so it can be piped while following.
          process.stdout.write(`${globals.output === 'json' ? toJsonString(EventSchema, event) : line(event, color)}\n`);
        }
      } catch (error) {
        if (!stop.signal.aborted) throw error;
      }
    });
}

function line(event: Event, color: boolean): string {
  const time = event.time === undefined ? '-' : timestampDate(event.time).toISOString().replace('T', ' ').replace('Z', '');
  const cursor = String(event.cursor).padStart(6);
  const kind = event.detail.case ?? 'event';
  if (!color) return `${time}  ${cursor}  ${event.message}`;
  const shade = kind === 'nodeState' ? 35 : kind === 'rollout' ? 36 : /FAILED|LOST|pending/.test(event.message) ? 33 : 0;
  return `\x1b[2m${time}  ${cursor}\x1b[0m  ${shade === 0 ? event.message : `\x1b[${shade}m${event.message}\x1b[0m`}`;
}
