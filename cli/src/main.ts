import { ConnectError } from '@connectrpc/connect';
import { Command } from 'commander';
import { appCommands } from './commands/app.js';
import { eventsCommand } from './commands/events.js';
import { imageCommands } from './commands/image.js';
import { instanceCommands } from './commands/instance.js';
import { logsCommand } from './commands/logs.js';
import { nodeCommands } from './commands/node.js';
import { pkiCommands } from './commands/pki.js';
import { secretCommands } from './commands/secret.js';
import { statusCommand } from './commands/status.js';
import { addGlobalOptions, CliError } from './global-options.js';

const program = addGlobalOptions(new Command('shellwego')).description('operate a shellwego cluster').showHelpAfterError();
statusCommand(program);
pkiCommands(program);
imageCommands(program);
secretCommands(program);
nodeCommands(program);
appCommands(program);
instanceCommands(program);
eventsCommand(program);
logsCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`shellwego: ${describe(error)}\n`);
  process.exitCode = 1;
}

function describe(error: unknown): string {
  if (error instanceof CliError) return error.message;
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
