import { type Command, Help } from 'commander';

/**
 * A top-level command as `shellwego --help` lists it, and the module that defines the rest. That
 * module is imported only when the command runs: each one pulls in its own contracts and clients,
 * and start-up should not pay for every command's dependencies.
 */
export interface TopLevelCommand {
  readonly name: string;
  readonly description: string;
  /** What the help list shows after the name, as commander derives it from the defined command. */
  readonly operands: string;
  readonly define: () => Promise<(command: Command) => void>;
}

export const topLevelCommands: readonly TopLevelCommand[] = [
  {
    name: 'status',
    description: 'health of every shellwego service',
    operands: '',
    define: async () => (await import('./commands/status.js')).statusCommand,
  },
  {
    name: 'ca',
    description: 'the cluster certificate authority',
    operands: '',
    define: async () => (await import('./commands/pki.js')).caCommands,
  },
  {
    name: 'cert',
    description: 'client and service certificates',
    operands: '',
    define: async () => (await import('./commands/pki.js')).certCommands,
  },
  {
    name: 'image',
    description: 'OCI images and their root filesystems in the registry',
    operands: '',
    define: async () => (await import('./commands/image.js')).imageCommands,
  },
  {
    name: 'secret',
    description: 'secret values (workspace scope, or one app with --app): set, list, delete, master key rotation and the audit log',
    operands: '',
    define: async () => (await import('./commands/secret.js')).secretCommands,
  },
  {
    name: 'node',
    description: 'worker nodes: join tokens, list, label, ceiling, cordon, drain, rm',
    operands: '',
    define: async () => (await import('./commands/node.js')).nodeCommands,
  },
  {
    name: 'app',
    description: 'apps: deploy, list, inspect, scale, roll back, remove',
    operands: '',
    define: async () => (await import('./commands/app.js')).appCommands,
  },
  {
    name: 'instance',
    description: 'app instances',
    operands: '',
    define: async () => (await import('./commands/instance.js')).instanceCommands,
  },
  {
    name: 'events',
    description: 'scheduler events (instance states, placements, rollouts, nodes), oldest first',
    operands: ' [options]',
    define: async () => (await import('./commands/events.js')).eventsCommand,
  },
  {
    name: 'logs',
    description: "print a workload's output (stdout and stderr) as its node agent keeps it; --node-agent names the node",
    operands: ' [options] <instance-or-app>',
    define: async () => (await import('./commands/logs.js')).logsCommand,
  },
];

/**
 * Adds every top-level command with its name and description only; commander's preSubcommand hook
 * defines the one about to run just before it parses its arguments, and `help <command>` defines
 * the one it shows.
 */
export function addTopLevelCommands(program: Command): void {
  const byName = new Map(topLevelCommands.map((entry) => [entry.name, entry]));
  const commands = new Map(topLevelCommands.map((entry) => [entry.name, program.command(entry.name).description(entry.description)]));
  program.hook('preSubcommand', async (_program, command) => {
    await define(command);
  });
  // Commander's own help command prints a subcommand's help without running the hook; this one
  // answers as it does: program help without a name or when an option comes first (options are
  // ignored), a command's help for its name, program help as an error for any other name.
  program
    .command('help')
    .description('display help for command')
    .argument('[command]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (name: string | undefined) => {
      if (name === undefined || name.startsWith('-')) program.help();
      const command = commands.get(name);
      if (command === undefined) program.help({ error: true });
      await define(command);
      command.help();
    });
  // Set after the commands exist, so they do not inherit it: it only renders the program's list.
  program.configureHelp({
    subcommandTerm: (command) => {
      const entry = byName.get(command.name());
      return entry === undefined ? new Help().subcommandTerm(command) : `${entry.name}${entry.operands}`;
    },
  });

  async function define(command: Command): Promise<void> {
    const entry = byName.get(command.name());
    if (entry !== undefined) (await entry.define())(command);
  }
}
