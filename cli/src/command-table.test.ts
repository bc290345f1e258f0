import { Command, CommanderError, Help } from 'commander';
import { describe, expect, it } from 'vitest';
import { addTopLevelCommands, topLevelCommands } from './command-table.js';

/** A program with every top-level command, its output captured and its exits thrown. */
function program(): { program: Command; out: () => string } {
  let out = '';
  const program = new Command('shellwego').exitOverride().configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (out += text) });
  addTopLevelCommands(program);
  return { program, out: () => out };
}

async function exitOf(run: Promise<unknown>): Promise<CommanderError> {
  const error = await run.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof CommanderError)) throw new Error(`expected commander to exit, got ${String(error)}`);
  return error;
}

const commandNamed = (parent: Command, name: string) => parent.commands.find((command) => command.name() === name);

describe('top-level commands', () => {
  it('are listed in the program help as commander shows them once defined', async () => {
    for (const entry of topLevelCommands) {
      const command = new Command(entry.name);
      (await entry.define())(command);
      expect(`${entry.name}${entry.operands}`, entry.name).toBe(new Help().subcommandTerm(command));
    }
    const { program: cli } = program();
    for (const entry of topLevelCommands) expect(cli.helpInformation()).toContain(`${entry.name}${entry.operands}  `);
  });

  it('defines only the command that runs', async () => {
    const { program: cli, out } = program();
    const exit = await exitOf(cli.parseAsync(['instance', '--help'], { from: 'user' }));
    expect(exit.exitCode).toBe(0);
    expect(out()).toContain('Usage: shellwego instance [options] [command]');
    expect(out()).toMatch(/ls \[options\] +list instances/);
    expect(commandNamed(cli, 'secret')?.commands).toEqual([]);
  });

  it('defines the command `help <command>` shows', async () => {
    const { program: cli, out } = program();
    const exit = await exitOf(cli.parseAsync(['help', 'logs'], { from: 'user' }));
    expect(exit.exitCode).toBe(0);
    expect(out()).toContain('Usage: shellwego logs [options] <instance-or-app>');
    expect(out()).toContain('--follow');
  });

  it('answers `help` as commander does: program help, as an error for an unknown name', async () => {
    for (const [args, exitCode] of [
      [['help'], 0],
      [['help', '--bogus'], 0],
      [['help', 'help'], 1],
      [['help', 'bogus'], 1],
    ] as const) {
      const { program: cli, out } = program();
      const exit = await exitOf(cli.parseAsync(args, { from: 'user' }));
      expect(exit.exitCode, args.join(' ')).toBe(exitCode);
      expect(out(), args.join(' ')).toContain('Usage: shellwego [options] [command]');
    }
  });
});
