import { setTimeout as sleep } from 'node:timers/promises';
import { toJson } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Client } from '@connectrpc/connect';
import type { AuditEvent, GetMasterKeyStatusResponse, SecretScope } from '@shellwego/contracts/secrets/v1/secrets_pb';
import {
  AuditAction,
  AuditEventSchema,
  AuditOutcome,
  GetMasterKeyStatusResponseSchema,
  SecretInfoSchema,
  SecretScopeKind,
  SecretsService,
  SecretVersionSchema,
} from '@shellwego/contracts/secrets/v1/secrets_pb';
import { createMtlsClient, expectedService } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import { CliError, type GlobalOptions, loadTls } from '../global-options.js';
import { ownedUtf8, readAllStdin, readHiddenLine, stdinIsTerminal } from '../hidden-input.js';
import { printTable, printValue } from '../output.js';

/** The service's limit, checked here too so a too-large value is never sent. */
const MAX_VALUE_BYTES = 64 * 1024;
const FOLLOW_POLL_MS = 1000;

interface ScopeOptions {
  app?: string;
}

async function secretsClient(command: Command): Promise<{ client: Client<typeof SecretsService>; globals: GlobalOptions }> {
  const globals = command.optsWithGlobals<GlobalOptions>();
  return { client: createMtlsClient(SecretsService, { baseUrl: globals.secrets, server: expectedService('secrets'), tls: await loadTls(globals) }), globals };
}

function scopeOf(options: ScopeOptions): { kind: SecretScopeKind; app: string } {
  return options.app === undefined ? { kind: SecretScopeKind.WORKSPACE, app: '' } : { kind: SecretScopeKind.APP, app: options.app };
}

function describeScope(scope: Pick<SecretScope, 'kind' | 'app'> | undefined): string {
  if (scope === undefined) return '-';
  return scope.kind === SecretScopeKind.APP ? `app ${scope.app}` : 'workspace';
}

function time(ts: Timestamp | undefined): string {
  return ts === undefined ? '-' : timestampDate(ts).toISOString();
}

async function readValue(name: string, options: { value?: string }, positional: string | undefined): Promise<Buffer> {
  if (options.value !== undefined && positional !== undefined)
    throw new CliError('give the value once: as the argument after the name or with --value, not both');
  const onCommandLine = positional ?? options.value;
  if (onCommandLine !== undefined) {
    const how = positional === undefined ? 'given with --value' : 'given as an argument';
    process.stderr.write(
      `shellwego: warning: a value ${how} is visible in your shell history and to other users in /proc/<pid>/cmdline; pipe it on stdin or type it at the prompt instead\n`,
    );
    const value = ownedUtf8(onCommandLine);
    if (value.length > MAX_VALUE_BYTES) {
      value.fill(0);
      throw new CliError(`the value is over ${MAX_VALUE_BYTES} bytes, the limit`);
    }
    return value;
  }
  if (stdinIsTerminal()) {
    const value = await readHiddenLine({ prompt: `value for ${name} (input hidden, Enter to finish): `, maxBytes: MAX_VALUE_BYTES, what: 'value' });
    if (value.length === 0) throw new CliError('no value typed; nothing was stored (to store an empty value, pipe it: printf "" | shellwego secret set NAME)');
    return value;
  }
  const value = await readAllStdin({ maxBytes: MAX_VALUE_BYTES, what: 'value' });
  if (value.at(-1) === 0x0a) {
    process.stderr.write("shellwego: note: the value read from stdin ends with a newline, which is stored as part of it; use printf '%s' to leave it out\n");
  }
  return value;
}

function keyStatusText(status: GetMasterKeyStatusResponse): string {
  const lines = [`current master key: ${status.currentKekId}`];
  for (const version of status.versions) {
    lines.push(`  ${version.kekId}  created ${time(version.createdAt)}  wraps ${version.wrappedCount} secret version(s)  ${version.encryptions} encryption(s)`);
  }
  lines.push(
    status.rewrapRunning
      ? `re-wrap running: ${status.rewrapDone} of ${status.rewrapTotal} data keys moved`
      : `re-wrap idle (last: ${status.rewrapDone} of ${status.rewrapTotal} data keys moved)`,
  );
  return lines.join('\n');
}

function parseAction(value: string): AuditAction {
  const actions: Record<string, AuditAction> = { set: AuditAction.SET, delete: AuditAction.DELETE, resolve: AuditAction.RESOLVE, rotate: AuditAction.ROTATE };
  const action = actions[value];
  if (action === undefined) throw new CliError(`--action must be one of ${Object.keys(actions).join(', ')}, got "${value}"`);
  return action;
}

function parseOutcome(value: string): AuditOutcome {
  if (value === 'granted') return AuditOutcome.GRANTED;
  if (value === 'denied') return AuditOutcome.DENIED;
  throw new CliError(`--outcome must be granted or denied, got "${value}"`);
}

function parseAfter(value: string): bigint {
  if (!/^\d{1,20}$/.test(value)) throw new CliError(`--after must be an audit event id, got "${value}"`);
  return BigInt(value);
}

function auditCells(event: AuditEvent): string[] {
  const secrets = event.secrets.map((s) => (s.version === 0 ? s.name : `${s.name}@v${s.version}`)).join(',') || '-';
  return [
    String(event.id),
    time(event.time),
    AuditAction[event.action]?.toLowerCase() ?? String(event.action),
    AuditOutcome[event.outcome]?.toLowerCase() ?? String(event.outcome),
    event.principal,
    describeScope(event.scope),
    secrets,
    event.instanceId || '-',
    event.reason,
  ];
}

function auditLine(event: AuditEvent): string {
  return auditCells(event).join('  ').trimEnd();
}

interface AuditOptions {
  follow?: boolean;
  action?: AuditAction;
  outcome?: AuditOutcome;
  name?: string;
  instance?: string;
  principal?: string;
  after?: bigint;
}

export function secretCommands(secret: Command): void {
  secret
    .command('set')
    .description('store a new version of a secret; the value comes from stdin (byte for byte) or a hidden prompt')
    .argument('<name>', 'env-var style name, e.g. DB_PASSWORD')
    .argument('[value]', 'the value itself, as in `secret set KEY VALUE` (discouraged like --value)')
    .option('--app <app>', 'store it for one app (default: the workspace, for every app)')
    .option('--value <value>', 'the value itself (discouraged: it lands in shell history and /proc)')
    .action(async (name: string, positional: string | undefined, options: ScopeOptions & { value?: string }, command: Command) => {
      const { client, globals } = await secretsClient(command);
      const value = await readValue(name, options, positional);
      try {
        const res = await client.setSecret({ scope: scopeOf(options), name, value });
        const info = res.secret;
        printValue(
          globals.output,
          info === undefined ? {} : toJson(SecretInfoSchema, info),
          `${name} (${describeScope(info?.scope)}): version ${info?.latestVersion ?? '?'} stored, ${info?.versionCount ?? '?'} kept, digest ${info?.digest.slice(0, 16) ?? '?'}`,
        );
      } finally {
        value.fill(0);
      }
    });

  secret
    .command('list')
    .description('list secrets: names, versions, who set them and digests (never values)')
    .option('--app <app>', "only this app's secrets")
    .option('--workspace', 'only workspace secrets')
    .action(async (options: ScopeOptions & { workspace?: boolean }, command: Command) => {
      if (options.app !== undefined && options.workspace === true) throw new CliError('pass --app or --workspace, not both');
      const { client, globals } = await secretsClient(command);
      const filter = options.app !== undefined || options.workspace === true ? { scope: scopeOf(options) } : {};
      const res = await client.listSecrets(filter);
      printTable(
        globals.output,
        res.secrets.map((s) => toJson(SecretInfoSchema, s)),
        ['SCOPE', 'NAME', 'VERSION', 'KEPT', 'UPDATED', 'BY', 'DIGEST'],
        res.secrets.map((s) => [
          describeScope(s.scope),
          s.name,
          String(s.latestVersion),
          String(s.versionCount),
          time(s.updatedAt),
          s.updatedBy,
          s.digest.slice(0, 16),
        ]),
      );
    });

  secret
    .command('versions')
    .description('list the retained versions of a secret, newest first')
    .argument('<name>')
    .option('--app <app>', 'the app the secret belongs to (default: workspace)')
    .action(async (name: string, options: ScopeOptions, command: Command) => {
      const { client, globals } = await secretsClient(command);
      const res = await client.listSecretVersions({ scope: scopeOf(options), name });
      printTable(
        globals.output,
        res.versions.map((v) => toJson(SecretVersionSchema, v)),
        ['VERSION', 'CREATED', 'BY', 'MASTER KEY', 'DIGEST'],
        res.versions.map((v) => [String(v.version), time(v.createdAt), v.createdBy, v.kekId, v.digest.slice(0, 16)]),
      );
    });

  secret
    .command('delete')
    .description('delete every version of a secret (its audit history stays)')
    .argument('<name>')
    .option('--app <app>', 'the app the secret belongs to (default: workspace)')
    .action(async (name: string, options: ScopeOptions, command: Command) => {
      const { client, globals } = await secretsClient(command);
      const scope = scopeOf(options);
      const res = await client.deleteSecret({ scope, name });
      printValue(
        globals.output,
        { name, scope: describeScope(scope), versionsDeleted: res.versionsDeleted },
        `deleted ${name} (${describeScope(scope)}): ${res.versionsDeleted} version(s)`,
      );
    });

  secret
    .command('rotate-key')
    .description('add a master key version; new writes use it at once and existing data keys are re-wrapped in the background')
    .option('--wait', 'wait until every data key has been re-wrapped')
    .action(async (options: { wait?: boolean }, command: Command) => {
      const { client, globals } = await secretsClient(command);
      const { kekId } = await client.rotateMasterKey({});
      let status = await client.getMasterKeyStatus({});
      while (options.wait === true && status.rewrapRunning) {
        await sleep(250);
        status = await client.getMasterKeyStatus({});
      }
      printValue(globals.output, { kekId, status: toJson(GetMasterKeyStatusResponseSchema, status) }, `new master key ${kekId}\n${keyStatusText(status)}`);
    });

  secret
    .command('key-status')
    .description('master key versions in use and the progress of a re-wrap')
    .action(async (_options: unknown, command: Command) => {
      const { client, globals } = await secretsClient(command);
      const status = await client.getMasterKeyStatus({});
      printValue(globals.output, toJson(GetMasterKeyStatusResponseSchema, status), keyStatusText(status));
    });

  secret
    .command('audit')
    .description('the audit log, oldest first: every set, delete, resolve (granted or denied) and rotation')
    .option('-f, --follow', 'keep printing new events as they happen (Ctrl-C stops)')
    .option('--action <action>', 'only set, delete, resolve or rotate', parseAction)
    .option('--outcome <outcome>', 'only granted or denied', parseOutcome)
    .option('--name <name>', 'only events naming this secret')
    .option('--instance <id>', 'only events for this instance')
    .option('--principal <spiffe-id>', 'only events by this caller, e.g. spiffe://shellwego/node/n1')
    .option('--after <id>', 'only events after this id', parseAfter)
    .action(async (options: AuditOptions, command: Command) => {
      const { client, globals } = await secretsClient(command);
      const filters = {
        action: options.action ?? AuditAction.UNSPECIFIED,
        outcome: options.outcome ?? AuditOutcome.UNSPECIFIED,
        name: options.name ?? '',
        instanceId: options.instance ?? '',
        principal: options.principal ?? '',
      };
      const fetchAfter = async (afterId: bigint): Promise<AuditEvent[]> => {
        const events: AuditEvent[] = [];
        let pageToken = '';
        do {
          const page = await client.listAuditEvents({ ...filters, afterId, page: { pageSize: 1000, pageToken } });
          events.push(...page.events);
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return events;
      };
      const first = await fetchAfter(options.after ?? 0n);
      if (options.follow !== true) {
        printTable(
          globals.output,
          first.map((e) => toJson(AuditEventSchema, e)),
          ['ID', 'TIME', 'ACTION', 'OUTCOME', 'PRINCIPAL', 'SCOPE', 'SECRETS', 'INSTANCE', 'REASON'],
          first.map(auditCells),
        );
        return;
      }
      // Following prints one line (or one JSON object) per event as it arrives.
      const print = (event: AuditEvent) =>
        process.stdout.write(`${globals.output === 'json' ? JSON.stringify(toJson(AuditEventSchema, event)) : auditLine(event)}\n`);
      let last = options.after ?? 0n;
      for (let events = first; ; events = await fetchAfter(last)) {
        for (const event of events) {
          print(event);
          last = event.id;
        }
        await sleep(FOLLOW_POLL_MS);
      }
    });
}
