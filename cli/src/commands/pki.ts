import { X509Certificate } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  CertificateAuthority,
  certifyNodeIntermediate,
  createCsr,
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

/** `shellwego ca init`, `ca request`, `ca intermediate` and `ca retire`. */
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
  ca.command('request')
    .description(
      "on the scheduler's host: make the key of a node intermediate (0600) and its CSR; take only the CSR to the root's machine (`ca intermediate --csr`)",
    )
    .option('--out <dir>', 'directory to write <name>.key and <name>.csr into', '.')
    .option('--name <name>', 'file name of the intermediate', 'node-ca')
    .action(async (options: { out: string; name: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const name = intermediateName(options.name);
      const keyPath = join(options.out, `${name}.key`);
      const csrPath = join(options.out, `${name}.csr`);
      if ((await fileExists(keyPath)) || (await fileExists(csrPath)))
        throw new CliError(`${keyPath} or ${csrPath} exists already; choose another --name or --out`);
      const { csrPem, keyPem } = await createCsr(`shellwego node CA ${name}`);
      await writeFileAtomic(keyPath, keyPem, privateKeyMode);
      await writeFileAtomic(csrPath, csrPem, publicFileMode);
      printValue(
        globals.output,
        { key: keyPath, csr: csrPath },
        `wrote ${keyPath} and ${csrPath}; sign the CSR where the root key is: shellwego ca intermediate --csr ${csrPath}`,
      );
    });
  ca.command('intermediate')
    .description(
      'create a node-issuing intermediate CA (path length 0, signed by the root at --ca, which needs its key beside it) for the scheduler, and add it to the trust bundle --ca',
    )
    .option('--out <dir>', 'directory to write <name>.crt (and <name>.key, without --csr) into', '.')
    .option('--name <name>', 'file name and certificate name of the intermediate', 'node-ca')
    .option('--csr <file>', 'certify the key of this CSR (from `ca request` on the scheduler host) instead of making a key here')
    .action(async (options: { out: string; name: string; csr?: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const name = intermediateName(options.name);
      const target = { cert: join(options.out, `${name}.crt`), key: join(options.out, `${name}.key`) };
      if ((await fileExists(target.cert)) || (options.csr === undefined && (await fileExists(target.key)))) {
        throw new CliError(`${target.cert} or ${target.key} exists already; choose another --name or --out`);
      }
      const root = await loadAuthority(globals.ca);
      if (!root.isRoot) throw new CliError(`the key beside ${globals.ca} is not the cluster root's; intermediates are signed by the root`);
      const paths = { bundle: globals.ca, key: caKeyPath(globals.ca) };
      let certPem: string;
      if (options.csr === undefined) {
        certPem = (await introduceNodeIntermediate(root, paths, target, `shellwego node CA ${name}`)).certPem;
      } else {
        const csrPem = await readFile(options.csr, 'utf8').catch(() => {
          throw new CliError(`cannot read ${options.csr}`);
        });
        try {
          certPem = await certifyNodeIntermediate(root, paths, csrPem, target.cert, `shellwego node CA ${name}`);
        } catch (error) {
          throw new CliError(`cannot certify ${options.csr}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      const key = options.csr === undefined ? target.key : `the key beside ${options.csr}`;
      printValue(
        globals.output,
        { cert: target.cert, ...(options.csr === undefined ? { key: target.key } : {}), bundle: globals.ca },
        `created node CA ${target.cert} (key ${key}, valid until ${new Date(new X509Certificate(certPem).validTo).toISOString()}) and added it to ${globals.ca}.\n` +
          `Copy ${globals.ca} to every host (processes re-read it within seconds), then give the scheduler the certificate and its key ` +
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

function intermediateName(name: string): string {
  if (!isValidIdentitySegment(name)) throw new CliError(`"${name}" is not a valid name: lowercase letters, digits, '.', '_' and '-'`);
  return name;
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
