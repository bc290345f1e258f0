import { Command } from 'commander';
import { addTopLevelCommands } from './command-table.js';
import { addGlobalOptions, CliError } from './global-options.js';

const program = addGlobalOptions(new Command('shellwego')).description('operate a shellwego cluster').showHelpAfterError();
addTopLevelCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`shellwego: ${await describe(error)}\n`);
  process.exitCode = 1;
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
