import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultPorts, shellwegoHome } from '@shellwego/kit/config';
import type { TlsMaterial } from '@shellwego/kit/rpc';
import type { Command } from 'commander';
import type { OutputFormat } from './output.js';

export interface GlobalOptions {
  readonly scheduler: string;
  readonly secrets: string;
  readonly registry: string;
  readonly nodeAgent: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly output: OutputFormat;
}

/** Flags every command shares; defaults talk to `npm start` on this machine. */
export function addGlobalOptions(program: Command): Command {
  const home = shellwegoHome();
  const env = process.env;
  return program
    .option('--scheduler <url>', 'scheduler endpoint', env.SHELLWEGO_SCHEDULER_URL ?? `https://127.0.0.1:${defaultPorts.scheduler}`)
    .option('--secrets <url>', 'secrets endpoint', env.SHELLWEGO_SECRETS_URL ?? `https://127.0.0.1:${defaultPorts.secrets}`)
    .option('--registry <url>', 'registry endpoint', env.SHELLWEGO_REGISTRY_URL ?? `https://127.0.0.1:${defaultPorts.registry}`)
    .option('--node-agent <url>', 'node agent endpoint', env.SHELLWEGO_NODE_AGENT_URL ?? `https://127.0.0.1:${defaultPorts.nodeAgent}`)
    .option('--ca <file>', 'cluster CA certificate (PEM)', env.SHELLWEGO_CA ?? join(home, 'pki', 'ca.crt'))
    .option('--cert <file>', 'your client certificate (PEM)', env.SHELLWEGO_CERT ?? join(home, 'pki', 'admin.crt'))
    .option('--key <file>', 'your client key (PEM)', env.SHELLWEGO_KEY ?? join(home, 'pki', 'admin.key'))
    .option('-o, --output <format>', 'text or json', parseOutput, 'text' as OutputFormat);
}

function parseOutput(value: string): OutputFormat {
  if (value !== 'text' && value !== 'json') throw new Error(`--output must be text or json, got "${value}"`);
  return value;
}

/** Reads the CA, certificate and key named by the flags, with errors that say which flag to fix. */
export async function loadTls(options: GlobalOptions): Promise<TlsMaterial> {
  const read = async (path: string, flag: string) => {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      throw new CliError(
        `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): pass ${flag}, or run \`npm start\` once to create a development PKI`,
      );
    }
  };
  return {
    caPem: await read(options.ca, '--ca'),
    certPem: await read(options.cert, '--cert'),
    keyPem: await read(options.key, '--key'),
  };
}

/** An error whose message is meant for the operator as it is. */
export class CliError extends Error {
  override readonly name = 'CliError';
}
