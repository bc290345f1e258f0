import { Command } from 'commander';
import { addTopLevelCommands } from './command-table.js';
import { addGlobalOptions, CliError } from './global-options.js';

const program = addGlobalOptions(new Command('shellwego')).description('operate a shellwego cluster').showHelpAfterError();
addTopLevelCommands(program);

try {
  await traced(() => program.parseAsync(process.argv));
} catch (error) {
  process.stderr.write(`shellwego: ${await describe(error)}\n`);
  process.exitCode = 1;
}

/**
 * With the standard OTEL_* variables set, the command is one span (named after the command, never
 * its arguments) whose trace every call it makes continues; the spans are sent before exit.
 * Without them nothing of OpenTelemetry is loaded, so start-up stays fast.
 */
async function traced(run: () => Promise<unknown>): Promise<void> {
  if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT && !process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    await run();
    return;
  }
  const { startTracing, runInSpan } = await import('@shellwego/kit/tracing');
  const tracing = await startTracing({ serviceName: 'shellwego-cli' });
  try {
    await runInSpan('shellwego', {}, async (span) => {
      program.hook('preAction', (_program, command) => {
        span.updateName(commandPath(command));
      });
      await run();
    });
  } finally {
    await tracing.shutdown();
  }
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at !== null; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

async function describe(error: unknown): Promise<string> {
  if (error instanceof CliError) return error.message;
  // Imported here, not at the top: connect brings protobuf, whose start-up `--help` need not pay.
  const { ConnectError } = await import('@connectrpc/connect');
  if (error instanceof ConnectError) return `${codeName(error.code)}: ${error.rawMessage}`;
  return error instanceof Error ? error.message : String(error);
}

function codeName(code: number): string {
  return (
    [
      'ok',
      'canceled',
      'unknown',
      'invalid argument',
      'deadline exceeded',
      'not found',
      'already exists',
      'permission denied',
      'resource exhausted',
      'failed precondition',
      'aborted',
      'out of range',
      'unimplemented',
      'internal',
      'unavailable',
      'data loss',
      'unauthenticated',
    ][code] ?? `code ${code}`
  );
}
