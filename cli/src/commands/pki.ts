import { X509Certificate } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  CertificateAuthority,
  fileExists,
  introduceNodeIntermediate,
  isValidIdentitySegment,
  normalizeSerial,
  type Principal,
  privateKeyMode,
  publicFileMode,
  retireNodeIntermediate,
  serviceNames,
  writeFileAtomic,
} from '@shellwego/kit/pki';
import type { Command } from 'commander';
import { CliError, type GlobalOptions } from '../global-options.js';
import { printValue } from '../output.js';

/** `shellwego ca init`, `ca intermediate` and `ca retire`. */
export function caCommands(ca: Command): void {
  ca.command('init')
    .description('create a new cluster CA at --ca (its key beside it, mode 0600)')
    .option('--force', 'replace an existing CA (every issued certificate stops working)')
    .action(async (options: { force?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const keyPath = caKeyPath(globals.ca);
      if (!options.force && (await fileExists(globals.ca))) {
        throw new CliError(`${globals.ca} already exists; pass --force to replace it (every certificate it issued stops working)`);
      }
      const authority = await CertificateAuthority.create();
      await writeFileAtomic(keyPath, authority.keyPem, privateKeyMode);
      await writeFileAtomic(globals.ca, authority.certPem, publicFileMode);
      printValue(
        globals.output,
        { ca: globals.ca, key: keyPath },
        `created CA ${globals.ca} (key ${keyPath}); next, \`shellwego ca intermediate --out DIR\` makes the node CA the scheduler signs with`,
      );
    });
  ca.command('intermediate')
    .description(
      'create a node-issuing intermediate CA (path length 0, signed by the root at --ca, which needs its key beside it) for the scheduler, and add it to the trust bundle --ca',
    )
    .option('--out <dir>', 'directory to write <name>.crt and <name>.key into', '.')
    .option('--name <name>', 'file name and certificate name of the intermediate', 'node-ca')
    .action(async (options: { out: string; name: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (!isValidIdentitySegment(options.name)) throw new CliError(`"${options.name}" is not a valid name: lowercase letters, digits, '.', '_' and '-'`);
      const target = { cert: join(options.out, `${options.name}.crt`), key: join(options.out, `${options.name}.key`) };
      if ((await fileExists(target.cert)) || (await fileExists(target.key)))
        throw new CliError(`${target.cert} or ${target.key} exists already; choose another --name or --out`);
      const root = await loadAuthority(globals.ca);
      if (!root.isRoot) throw new CliError(`the key beside ${globals.ca} is not the cluster root's; intermediates are signed by the root`);
      const intermediate = await introduceNodeIntermediate(
        root,
        { bundle: globals.ca, key: caKeyPath(globals.ca) },
        target,
        `shellwego node CA ${options.name}`,
      );
      printValue(
        globals.output,
        { cert: target.cert, key: target.key, bundle: globals.ca },
        `created node CA ${target.cert} (key ${target.key}, valid until ${new Date(new X509Certificate(intermediate.certPem).validTo).toISOString()}) and added it to ${globals.ca}.\n` +
          `Copy ${globals.ca} to every host (processes re-read it within seconds), then give the scheduler ${target.cert} and ${target.key} ` +
          '(SHELLWEGO_SCHEDULER_NODE_CA_CERT, SHELLWEGO_SCHEDULER_NODE_CA_KEY) and restart it',
      );
    });
  ca.command('retire')
    .description('remove a node-issuing intermediate from the trust bundle --ca: every process refuses the certificates it signed once it re-reads the bundle')
    .argument('<cert>', "the intermediate's certificate file")
    .action(async (certPath: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      let removed: boolean;
      try {
        removed = await retireNodeIntermediate({ bundle: globals.ca, key: caKeyPath(globals.ca) }, await readFile(certPath, 'utf8'));
      } catch (error) {
        throw new CliError(`cannot retire ${certPath}: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!removed) throw new CliError(`${certPath} is not in the trust bundle ${globals.ca}`);
      printValue(
        globals.output,
        { retired: certPath, bundle: globals.ca },
        `retired ${certPath}: removed from ${globals.ca}; copy it to every host. Nodes still holding its certificates must renew first (they do at two thirds of their lifetime)`,
      );
    });
}

/** `shellwego cert issue` and `cert revoke`. */
export function certCommands(cert: Command): void {
  cert
    .command('issue')
    .description('issue a certificate signed by the CA at --ca (needs its key beside it)')
    .option('--user <name>', 'a user certificate: spiffe://shellwego/user/<name>')
    .option('--role <role>', 'role for a user certificate (repeatable)', collect, [] as string[])
    .option('--service <name>', `a service certificate (${serviceNames.join(', ')})`)
    .option('--node <id>', 'a node certificate (normally obtained by joining)')
    .option('--dns <name>', 'DNS name the certificate also serves (repeatable)', collect, [] as string[])
    .option('--ip <address>', 'IP address the certificate also serves (repeatable)', collect, [] as string[])
    .option('--days <n>', 'validity in days', '90')
    .option('--out <dir>', 'directory to write <name>.crt and <name>.key into', '.')
    .action(async (options: IssueOptions, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const principal = principalFrom(options);
      const days = Number(options.days);
      if (!Number.isInteger(days) || days < 1 || days > 3650) throw new CliError('--days must be a whole number from 1 to 3650');
      const authority = await loadAuthority(globals.ca);
      const issued = await authority.issue({
        principal,
        dnsNames: options.dns,
        ipAddresses: options.ip,
        validityMs: days * 86_400_000,
      });
      const name = principal.kind === 'node' ? principal.id : principal.name;
      const certPath = join(options.out, `${name}.crt`);
      const keyPath = join(options.out, `${name}.key`);
      await writeFileAtomic(keyPath, issued.keyPem, privateKeyMode);
      await writeFileAtomic(certPath, issued.certPem, publicFileMode);
      printValue(
        globals.output,
        { cert: certPath, key: keyPath, serial: issued.serial, notAfter: issued.notAfter.toISOString() },
        `issued ${certPath} (key ${keyPath}, serial ${issued.serial}, valid until ${issued.notAfter.toISOString()})`,
      );
    });
  cert
    .command('revoke')
    .description('revoke a certificate by serial; servers re-read the list within seconds')
    .argument('<serial>', 'the serial number in hex, as `cert issue` printed it')
    .action(async (serial: string, _options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (!/^[0-9a-fA-F:]+$/.test(serial)) throw new CliError(`"${serial}" is not a hex serial number`);
      const list = join(dirname(globals.ca), 'revoked.txt');
      await appendFile(list, `${normalizeSerial(serial)}\n`, { mode: publicFileMode });
      printValue(globals.output, { revoked: normalizeSerial(serial), list }, `revoked ${normalizeSerial(serial)} (listed in ${list})`);
    });
}

interface IssueOptions {
  user?: string;
  role: string[];
  service?: string;
  node?: string;
  dns: string[];
  ip: string[];
  days: string;
  out: string;
}

function principalFrom(options: IssueOptions): Principal {
  const chosen = [options.user, options.service, options.node].filter((v) => v !== undefined);
  if (chosen.length !== 1) throw new CliError('pass exactly one of --user, --service or --node');
  const name = chosen[0] as string;
  if (!isValidIdentitySegment(name)) {
    throw new CliError(`"${name}" is not a valid name: use lowercase letters, digits, '.', '_' and '-' (at most 63)`);
  }
  if (options.user !== undefined) return { kind: 'user', name, roles: options.role };
  if (options.node !== undefined) return { kind: 'node', id: name };
  if (!(serviceNames as readonly string[]).includes(name)) {
    throw new CliError(`unknown service "${name}"; one of ${serviceNames.join(', ')}`);
  }
  return { kind: 'service', name: name as Principal & { kind: 'service' } extends { name: infer N } ? N : never };
}

async function loadAuthority(caPath: string): Promise<CertificateAuthority> {
  const keyPath = caKeyPath(caPath);
  try {
    return await CertificateAuthority.load(await readFile(caPath, 'utf8'), await readFile(keyPath, 'utf8'));
  } catch (error) {
    throw new CliError(
      `cannot load the CA from ${caPath} and ${keyPath} (${error instanceof Error ? error.message : String(error)}); issuing needs the CA key`,
    );
  }
}

function caKeyPath(caPath: string): string {
  return `${caPath.replace(/\.crt$/, '')}.key`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
