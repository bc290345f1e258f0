// Least authority of the scheduler, against real processes. The attacker has compromised the
// scheduler's host and copied exactly the files the scheduler is configured to read (its
// settings, resolved as the scheduler resolves them): its own identity, the node-issuing
// intermediate and the grant signing key, never the root CA key. With the intermediate it
// signs an admin user certificate and a `service/secrets` certificate (chain included, so TLS
// verifies them up to the root). The scheduler, secrets and registry refuse both as callers;
// served as a fake secrets service, the CLI and a real node agent refuse it during the
// handshake. The scheduler refuses to start with the root key. Then the intermediate and the
// grant signing key are rotated with a node agent running an instance: the instance is never
// disturbed, the node moves to the new intermediate by renewing, and once the old intermediate
// is retired a certificate it signed is refused everywhere.
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { NodeService } from '@shellwego/contracts/scheduler/v1/nodes_pb';
import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { loadConfig } from '@shellwego/kit/config';
import { generateGrantKeyPair } from '@shellwego/kit/grant';
import { CertificateAuthority, type Principal, pemCertificates, TrustBundle } from '@shellwego/kit/pki';
import { createMtlsTransport, expectedService, implement, type RunningServer, serve, type TlsMaterial } from '@shellwego/kit/rpc';
import { schedulerConfig } from '@shellwego/scheduler/config';
import { freePort } from '@shellwego/testing/free-port';
import { capturingLogger } from '@shellwego/testing/logger';
import { EventStream } from '@shellwego/testing/scheduler/event-stream';
import { startService } from '@shellwego/testing/service-process';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryImageArchive } from '../e2e/support/canary-image.js';
import { instanceReached, reasonOf, statesOf } from '../e2e/support/instance-watch.js';
import { NodePlatform } from '../e2e/support/node-platform.js';

const HOUR = 3_600_000;
const RETIREMENT_DEADLINE_MS = 10_000;

let p: NodePlatform;
const fakes: RunningServer[] = [];
const scratch: string[] = [];
beforeAll(async () => {
  // Short node certificates, so the rotation sees renewals: back-dated 5 min, a 3 min certificate is
  // renewed two thirds into those 8 min, 20 s after it was issued.
  p = await NodePlatform.start({ SHELLWEGO_SCHEDULER_NODE_CERT_VALIDITY: '3m' });
  await p.importImage('app:1', await canaryImageArchive('app:1'));
}, 300_000);
afterAll(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  await p?.stop();
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function codeOf(call: Promise<unknown>): Promise<{ code: Code | 'OK'; message: string }> {
  try {
    await call;
    return { code: 'OK', message: '' };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: e.code, message: e.rawMessage };
  }
}

/** What scheduler, secrets and registry answer a caller presenting `tls`. */
async function answers(tls: TlsMaterial) {
  const transport = (service: 'scheduler' | 'secrets' | 'registry') =>
    createMtlsTransport({ baseUrl: p.platform.url(service), server: expectedService(service), tls, defaultTimeoutMs: 10_000 });
  const drain = async (stream: AsyncIterable<unknown>) => {
    for await (const _ of stream);
  };
  return {
    scheduler: await codeOf(createClient(NodeService, transport('scheduler')).listNodes({})),
    secrets: await codeOf(createClient(SecretsService, transport('secrets')).listSecrets({})),
    registry: await codeOf(drain(createClient(RegistryService, transport('registry')).fetchRootfs({}))),
  };
}

/** A certificate for `principal` signed by `ca`, with the chain to the root, trusting the bundle `caPem`. */
async function minted(ca: CertificateAuthority, principal: Principal, caPem: string): Promise<TlsMaterial> {
  const issued = await ca.issue({ principal, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityMs: HOUR });
  return { caPem, certPem: `${issued.certPem.trimEnd()}\n${ca.certPem}`, keyPem: issued.keyPem };
}

/** An admin certificate under a CA that the node intermediate signed, made with the openssl CLI as an attacker would. */
async function subCaAdmin(dir: string, nodeCaCert: string, nodeCaKey: string): Promise<{ certPem: string; keyPem: string }> {
  const openssl = (...args: string[]) => execa('openssl', args, { cwd: dir });
  const ext = async (name: string, lines: string[]) => {
    await writeFile(join(dir, name), `${lines.join('\n')}\n`);
    return name;
  };
  for (const name of ['sub', 'admin']) {
    await openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  }
  await openssl('req', '-new', '-key', 'sub.key', '-subj', '/CN=attacker sub CA', '-out', 'sub.csr');
  const caExt = await ext('sub.ext', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(
    'x509',
    '-req',
    '-in',
    'sub.csr',
    '-CA',
    nodeCaCert,
    '-CAkey',
    nodeCaKey,
    '-set_serial',
    '0x7a01',
    '-days',
    '1',
    '-extfile',
    caExt,
    '-out',
    'sub.crt',
  );
  await openssl('req', '-new', '-key', 'admin.key', '-subj', '/CN=admin/OU=admin', '-out', 'admin.csr');
  const leafExt = await ext('admin.ext', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
    'subjectAltName=URI:spiffe://shellwego/user/admin',
  ]);
  await openssl(
    'x509',
    '-req',
    '-in',
    'admin.csr',
    '-CA',
    'sub.crt',
    '-CAkey',
    'sub.key',
    '-set_serial',
    '0x7a02',
    '-days',
    '1',
    '-extfile',
    leafExt,
    '-out',
    'admin.crt',
  );
  const read = (name: string) => readFile(join(dir, name), 'utf8');
  return {
    certPem: `${(await read('admin.crt')).trimEnd()}\n${(await read('sub.crt')).trimEnd()}\n${await read(basename(nodeCaCert))}`,
    keyPem: await read('admin.key'),
  };
}

/** Every file the scheduler reads, as its own settings resolve them under this home (its database is a directory, not a key). */
async function schedulerFiles(): Promise<string[]> {
  const settings = loadConfig(schedulerConfig, { env: { SHELLWEGO_HOME: p.home } }) as Record<string, unknown>;
  const paths = Object.values(settings).filter((value): value is string => typeof value === 'string' && value.startsWith(p.home));
  const files: string[] = [];
  for (const path of paths) if ((await stat(path)).isFile()) files.push(path);
  return files;
}

/** Deploys `app` on the agent and waits until it is HEALTHY, the state it should then keep. */
async function deploy(app: string, agentKey: string, port: number): Promise<string> {
  const from = p.events.events.length;
  const result = await p.cli([
    'app',
    'deploy',
    app,
    '--image',
    'app:1',
    '--secret',
    'CANARY',
    '--env',
    `PORT=${port}`,
    '--health',
    `tcp:${port}`,
    '--memory',
    '64Mi',
    '--label',
    `role=${agentKey}`,
  ]);
  expect(result.exitCode, result.stderr).toBe(0);
  return (await instanceReached(p.events, app, InstanceState.HEALTHY, 90_000, from)).instanceId;
}

describe('least authority of the scheduler', () => {
  it('with only the scheduler files, a minted admin and service/secrets are refused by every service, the CLI and a node agent', {
    timeout: 240_000,
  }, async () => {
    const stolen = await mkdtemp(join(tmpdir(), 'shellwego-stolen-'));
    scratch.push(stolen);
    const files = await schedulerFiles();
    expect(files.map((file) => basename(file)).sort()).toEqual([
      'ca.crt',
      'grant-signing.key',
      'node-ca.crt',
      'node-ca.key',
      'revoked.txt',
      'scheduler.crt',
      'scheduler.key',
    ]);
    for (const file of files) await copyFile(file, join(stolen, basename(file)));
    const rootKey = await readFile(p.platform.pki.caKey, 'utf8');
    for (const file of await readdir(stolen)) expect(await readFile(join(stolen, file), 'utf8'), file).not.toContain(rootKey.trim());
    expect(files).not.toContain(p.platform.pki.caKey);

    const config = loadConfig(schedulerConfig, { env: { SHELLWEGO_HOME: p.home } });
    const from = (path: string) => readFile(join(stolen, basename(path)), 'utf8');
    const nodeCa = await CertificateAuthority.load(await from(config.nodeCaCert), await from(config.nodeCaKey));
    const bundle = await from(config.tlsCa);
    const admin = await minted(nodeCa, { kind: 'user', name: 'admin', roles: ['admin'] }, bundle);
    const secretsService = await minted(nodeCa, { kind: 'service', name: 'secrets' }, bundle);

    // As callers: refused by all three services as unauthenticated, naming the issuer and what it may sign.
    for (const [what, tls] of [
      ['admin', admin],
      ['service/secrets', secretsService],
    ] as const) {
      const got = await answers(tls);
      for (const service of ['scheduler', 'secrets', 'registry'] as const) {
        expect(got[service].code, `${what} at ${service}`).toBe(Code.Unauthenticated);
        expect(got[service].message, `${what} at ${service}`).toMatch(
          /signed by the node-issuing CA "CN=shellwego development node CA", which may sign only spiffe:\/\/shellwego\/node\/<id>/,
        );
      }
    }
    // Nor can it make a CA (path length 0): with stock openssl, a sub-CA it signs and an admin under that are refused by TLS itself.
    const subAdmin = await subCaAdmin(stolen, join(stolen, basename(config.nodeCaCert)), join(stolen, basename(config.nodeCaKey)));
    const viaSubCa = await answers({ caPem: bundle, ...subAdmin });
    for (const service of ['scheduler', 'secrets', 'registry'] as const) {
      expect(viaSubCa[service].code, service).toBe(Code.Unauthenticated);
      expect(viaSubCa[service].message, service).toMatch(/client certificate rejected \(PATH_LENGTH_EXCEEDED\)/);
    }
    // The same calls with the platform's real admin certificate pass authentication (control).
    expect((await answers(p.platform.admin)).scheduler.code).toBe('OK');

    // As a server: a fake secrets service with the minted certificate, at an address its names cover.
    const calls: string[] = [];
    const fake = await serve({
      name: 'secrets',
      host: '127.0.0.1',
      port: 0,
      tls: secretsService,
      logger: capturingLogger().logger,
      services: [
        implement(SecretsService, {
          setSecret() {
            calls.push('SetSecret');
            return {};
          },
          resolveSecrets() {
            calls.push('ResolveSecrets');
            return { secrets: [] };
          },
        }),
      ],
    });
    fakes.push(fake);
    const set = await p.cli(['--secrets', fake.url, 'secret', 'set', 'CANARY', '--app', 'victim'], { input: 'not for the attacker' });
    expect(set.exitCode).not.toBe(0);
    expect(set.stderr).toMatch(
      /refusing the server at 127\.0\.0\.1: the certificate for spiffe:\/\/shellwego\/service\/secrets was signed by the node-issuing CA/,
    );

    await p.setSecret('victim', 'CANARY', Buffer.from('victim secret'));
    await p.addAgent({ key: 'victim', driver: 'process', env: { SHELLWEGO_NODE_AGENT_SECRETS_URL: fake.url } });
    const before = p.events.events.length;
    const result = await p.cli(['app', 'deploy', 'victim', '--image', 'app:1', '--secret', 'CANARY', '--memory', '64Mi', '--label', 'role=victim']);
    expect(result.exitCode, result.stderr).toBe(0);
    const failed = await instanceReached(p.events, 'victim', InstanceState.FAILED, 90_000, before);
    expect(reasonOf(failed)).toMatch(/signed by the node-issuing CA .* which may sign only spiffe:\/\/shellwego\/node\/<id>/);
    expect(calls).toEqual([]);
    await p.cli(['app', 'rm', 'victim']);
  });

  it('the scheduler refuses to start with the root CA key, or with an intermediate the trust bundle does not list', { timeout: 120_000 }, async () => {
    const pki = p.platform.pki;
    const dir = await mkdtemp(join(tmpdir(), 'shellwego-refused-'));
    scratch.push(dir);
    const root = await CertificateAuthority.load(await readFile(pki.caCert, 'utf8'), await readFile(pki.caKey, 'utf8'));
    const unlisted = await root.issueIntermediate({ commonName: 'unlisted node CA', validityDays: 1 });
    await writeFile(join(dir, 'unlisted.crt'), unlisted.certPem);
    await writeFile(join(dir, 'unlisted.key'), unlisted.keyPem, { mode: 0o600 });
    const cases = [
      { cert: pki.caCert, key: pki.caKey, message: /SHELLWEGO_SCHEDULER_NODE_CA_KEY: is the cluster root CA's key: .*shellwego ca intermediate/ },
      { cert: join(dir, 'unlisted.crt'), key: join(dir, 'unlisted.key'), message: /SHELLWEGO_SCHEDULER_NODE_CA_CERT: is not listed in the trust bundle/ },
    ];
    for (const c of cases) {
      const lines: string[] = [];
      const child = await startService(
        'scheduler',
        {
          ...process.env,
          SHELLWEGO_HOME: p.home,
          SHELLWEGO_SCHEDULER_LISTEN: `127.0.0.1:${await freePort()}`,
          SHELLWEGO_SCHEDULER_DATABASE: join(dir, `db-${basename(c.cert)}`),
          SHELLWEGO_SCHEDULER_NODE_CA_CERT: c.cert,
          SHELLWEGO_SCHEDULER_NODE_CA_KEY: c.key,
        },
        (line) => lines.push(line),
      );
      expect(await child.exited).not.toBe(0);
      expect(lines.join('\n')).toMatch(c.message);
    }
  });

  it('rotates the node intermediate and the grant key under a running instance; the retired intermediate signs nothing after', {
    timeout: 420_000,
  }, async () => {
    const pki = p.platform.pki;
    const home = p.home;
    await p.setSecret('steady', 'CANARY', Buffer.from('steady secret'));
    await p.setSecret('after', 'CANARY', Buffer.from('after secret'));
    await p.setSecret('last', 'CANARY', Buffer.from('last secret'));
    const agent = await p.addAgent({ key: 'steady', driver: 'process' });
    const steady = await deploy('steady', 'steady', await freePort());
    const nodeCertPath = join(agent.stateDir, 'identity', 'node.crt');
    const issuerOf = async () => new X509Certificate(pemCertificates(await readFile(nodeCertPath, 'utf8'))[1] ?? '').subject;
    expect(await issuerOf()).toBe('CN=shellwego development node CA');
    // A certificate of the old intermediate for this node, valid long after the rotation: accepted now.
    const oldCa = await CertificateAuthority.load(await readFile(pki.nodeCa.cert, 'utf8'), await readFile(pki.nodeCa.key, 'utf8'));
    const oldNode = await minted(oldCa, { kind: 'node', id: agent.nodeId }, await readFile(pki.caCert, 'utf8'));
    for (const answer of Object.values(await answers(oldNode))) expect(answer.code).not.toBe(Code.Unauthenticated);
    const [atStart] = (await p.apps.listInstances({ app: 'steady' })).instances;
    expect(atStart?.id).toBe(steady);
    expect(atStart?.state).toBe(InstanceState.HEALTHY);
    const rotationStart = p.events.events.at(-1)?.cursor ?? 0n;

    // 1. Introduce: a second intermediate in the bundle (processes re-read it), a second grant key beside the first.
    const made = await p.cli(['ca', 'intermediate', '--out', join(home, 'pki'), '--name', 'node-ca-2']);
    expect(made.exitCode, made.stderr).toBe(0);
    expect(TrustBundle.parse(await readFile(pki.caCert, 'utf8')).nodeIssuers).toHaveLength(2);
    const grant2 = generateGrantKeyPair();
    await writeFile(join(home, 'pki', 'grant-signing-2.key'), grant2.privateKeyPem, { mode: 0o600 });
    await writeFile(join(home, 'pki', 'grant-signing-2.pub'), grant2.publicKeyPem);
    const bothKeys = `${pki.grantPublicKey},${join(home, 'pki', 'grant-signing-2.pub')}`;
    for (const service of ['secrets', 'registry'] as const) {
      await p.platform.stopService(service);
      await p.platform.restartService(service, { [`SHELLWEGO_${service.toUpperCase()}_GRANT_PUBLIC_KEYS`]: bothKeys });
    }

    // 2. Move the scheduler to the new intermediate and key; the node moves at its next renewal.
    await p.platform.stopService('scheduler');
    await p.platform.restartService('scheduler', {
      SHELLWEGO_SCHEDULER_NODE_CA_CERT: join(home, 'pki', 'node-ca-2.crt'),
      SHELLWEGO_SCHEDULER_NODE_CA_KEY: join(home, 'pki', 'node-ca-2.key'),
      SHELLWEGO_SCHEDULER_GRANT_SIGNING_KEY: join(home, 'pki', 'grant-signing-2.key'),
    });
    const events = new EventStream(p.apps, { afterCursor: rotationStart });
    const renewedBy = Date.now() + 120_000;
    while ((await issuerOf()) !== 'CN=shellwego node CA node-ca-2') {
      expect(Date.now(), 'the node renewed onto the new intermediate').toBeLessThan(renewedBy);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    // A new instance on the moved node: grant signed with the new key, node certificate from the new intermediate.
    const afterFrom = events.events.length;
    const deployed = await p.cli([
      'app',
      'deploy',
      'after',
      '--image',
      'app:1',
      '--secret',
      'CANARY',
      '--env',
      `PORT=${await freePort()}`,
      '--memory',
      '64Mi',
      '--label',
      'role=steady',
    ]);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    await events.waitFor(
      (e) => e.app === 'after' && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.RUNNING,
      90_000,
      'after RUNNING',
      afterFrom,
    );

    // 3. Retire the old intermediate (no restart: the bundle is re-read) and the old grant key.
    const retired = await p.cli(['ca', 'retire', pki.nodeCa.cert]);
    expect(retired.exitCode, retired.stderr).toBe(0);
    const retiredAt = Date.now();
    for (;;) {
      const got = await answers(oldNode);
      const refused = (['scheduler', 'secrets', 'registry'] as const).every(
        (s) =>
          got[s].code === Code.Unauthenticated && /"CN=shellwego development node CA", which is not a CA of this cluster's trust bundle/.test(got[s].message),
      );
      if (refused) {
        console.log(
          `[least-authority] the retired intermediate's certificate refused by scheduler, secrets and registry ${Date.now() - retiredAt} ms after ca retire`,
        );
        break;
      }
      expect(Date.now() - retiredAt, JSON.stringify(got)).toBeLessThan(RETIREMENT_DEADLINE_MS);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Each process says what it trusts once it re-read the bundle.
    const reread = (line: string) => line.includes('"trust bundle re-read"') && line.includes('"nodeIssuers":["CN=shellwego node CA node-ca-2"]');
    for (const service of ['scheduler', 'secrets', 'registry'] as const) expect(p.platform.service(service).lines.some(reread), service).toBe(true);
    for (const service of ['secrets', 'registry'] as const) {
      await p.platform.stopService(service);
      await p.platform.restartService(service, { [`SHELLWEGO_${service.toUpperCase()}_GRANT_PUBLIC_KEYS`]: join(home, 'pki', 'grant-signing-2.pub') });
    }
    const lastFrom = events.events.length;
    const last = await p.cli([
      'app',
      'deploy',
      'last',
      '--image',
      'app:1',
      '--secret',
      'CANARY',
      '--env',
      `PORT=${await freePort()}`,
      '--memory',
      '64Mi',
      '--label',
      'role=steady',
    ]);
    expect(last.exitCode, last.stderr).toBe(0);
    await events.waitFor(
      (e) => e.app === 'last' && e.detail.case === 'instanceState' && e.detail.value.to === InstanceState.RUNNING,
      90_000,
      'last RUNNING',
      lastFrom,
    );

    // The instance that ran through all of it was never touched: no event of it since the rotation began, still RUNNING.
    expect(statesOf(events.events, steady)).toEqual([]);
    const { instances } = await p.apps.listInstances({ app: 'steady' });
    expect(instances.map((i) => [i.id, i.state])).toEqual([[steady, atStart?.state]]);
    expect(events.events.filter((e) => e.detail.case === 'nodeState' && e.nodeId === agent.nodeId)).toEqual([]);
  });
});
