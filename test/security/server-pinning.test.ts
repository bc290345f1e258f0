// A node posing as a control service. The attacker is a real node: it joined with a real token
// and holds the certificate the scheduler issued it (host name "attacker"). It serves a fake
// SecretsService and a fake RegistryService with that certificate, and controls name resolution
// for its victims (modelled by a resolver override preloaded into the victim process), so the
// host name check passes. The CLI and a real node agent pointed at it must refuse it during the
// TLS handshake: no request, and so no secret value, ever reaches it.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { RegistryService } from '@shellwego/contracts/registry/v1/registry_pb';
import { SecretsService } from '@shellwego/contracts/secrets/v1/secrets_pb';
import { implement, type RunningServer, serve, type TlsMaterial } from '@shellwego/kit/rpc';
import { leaks } from '@shellwego/testing/leak-scan/leak-scan';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryImageArchive } from '../e2e/support/canary-image.js';
import { instanceReached, reasonOf } from '../e2e/support/instance-watch.js';
import { NodePlatform } from '../e2e/support/node-platform.js';

const ATTACKER = 'attacker';

let platform: NodePlatform | undefined;
const fakes: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  await platform?.stop();
});

/** Every call the fake services took, with whatever bytes came with it. */
const calls: { method: string; bytes: Uint8Array }[] = [];

async function fakeServices(tls: TlsMaterial): Promise<{ secrets: RunningServer; registry: RunningServer }> {
  const record = (method: string, bytes: Uint8Array = new Uint8Array()) => calls.push({ method, bytes });
  const start = (services: Parameters<typeof serve>[0]['services']) =>
    serve({ name: 'secrets', host: '127.0.0.1', port: 0, tls, logger: capturingLogger().logger, services });
  const secrets = await start([
    implement(SecretsService, {
      setSecret(request) {
        record('SetSecret', request.value);
        return {};
      },
      resolveSecrets() {
        record('ResolveSecrets');
        return { secrets: [] };
      },
      listSecrets() {
        record('ListSecrets');
        return { secrets: [] };
      },
    }),
  ]);
  const registry = await start([
    implement(RegistryService, {
      listImages() {
        record('ListImages');
        return { images: [] };
      },
      async *fetchRootfs() {
        record('FetchRootfs');
        yield { part: { case: 'info', value: {} } };
      },
    }),
  ]);
  fakes.push(secrets, registry);
  return { secrets, registry };
}

/** A preload that resolves the attacker's host name to loopback, as a poisoned resolver would. */
async function poisonedResolver(dir: string): Promise<string> {
  const file = join(dir, 'poisoned-resolver.mjs');
  await writeFile(
    file,
    `import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
const lookup = dns.lookup;
dns.lookup = (host, options, callback) => {
  if (host !== ${JSON.stringify(ATTACKER)}) return lookup(host, options, callback);
  const done = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options !== null && options.all;
  process.nextTick(() => (all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4)));
};
syncBuiltinESMExports();
`,
  );
  return `--import=${pathToFileURL(file).href}`;
}

describe('a node certificate cannot pose as a control service', () => {
  it('the CLI and the node agent refuse a fake SecretsService and a fake registry served with a joined node certificate', { timeout: 240_000 }, async () => {
    platform = await NodePlatform.start();
    const p = platform;
    const attacker = await p.addAgent({ key: ATTACKER, driver: 'process' });
    const identity = join(attacker.stateDir, 'identity');
    const stolen: TlsMaterial = {
      caPem: await readFile(join(identity, 'ca.crt'), 'utf8'),
      certPem: await readFile(join(identity, 'node.crt'), 'utf8'),
      keyPem: await readFile(join(identity, 'node.key'), 'utf8'),
    };
    const fake = await fakeServices(stolen);
    const fakeUrl = (server: RunningServer) => `https://${ATTACKER}:${new URL(server.url).port}`;
    const nodeOptions = await poisonedResolver(p.home);
    const canary = Buffer.from(`CANARY-${randomBytes(16).toString('hex')}`);

    // The CLI: the operator's secret value and image listing go nowhere.
    const set = await p.cli(['--secrets', fakeUrl(fake.secrets), 'secret', 'set', 'DB_PASSWORD', '--app', 'shop'], {
      input: canary,
      env: { NODE_OPTIONS: nodeOptions },
    });
    expect(set.exitCode).not.toBe(0);
    expect(set.stderr).toContain(`presented spiffe://shellwego/node/${attacker.nodeId}, expected spiffe://shellwego/service/secrets`);
    const images = await p.cli(['--registry', fakeUrl(fake.registry), 'image', 'ls'], { env: { NODE_OPTIONS: nodeOptions } });
    expect(images.exitCode).not.toBe(0);
    expect(images.stderr).toContain('expected spiffe://shellwego/service/registry');

    // The node agent: pointed at the fake secrets service, it fetches the rootfs from the real
    // registry and then refuses to ask the impostor for the app's secrets.
    await p.setSecret('shop', 'DB_PASSWORD', canary);
    await p.importImage('shop:1', await canaryImageArchive('shop:1'));
    await p.addAgent({
      key: 'victim-secrets',
      driver: 'process',
      env: { SHELLWEGO_NODE_AGENT_SECRETS_URL: fakeUrl(fake.secrets), NODE_OPTIONS: nodeOptions },
    });
    // Pointed at the fake registry, it refuses to download a root filesystem from it.
    await p.addAgent({
      key: 'victim-registry',
      driver: 'process',
      env: { SHELLWEGO_NODE_AGENT_REGISTRY_URL: fakeUrl(fake.registry), NODE_OPTIONS: nodeOptions },
    });
    for (const key of ['victim-secrets', 'victim-registry']) {
      const app = `shop-${key}`;
      await p.setSecret(app, 'DB_PASSWORD', canary);
      const from = p.events.events.length;
      const deploy = await p.cli(['app', 'deploy', app, '--image', 'shop:1', '--secret', 'DB_PASSWORD', '--memory', '64Mi', '--label', `role=${key}`]);
      expect(deploy.exitCode, deploy.stderr).toBe(0);
      const failed = await instanceReached(p.events, app, InstanceState.FAILED, 90_000, from);
      expect(failed.nodeId).toBe(p.agent(key).nodeId);
      expect(reasonOf(failed)).toMatch(/expected spiffe:\/\/shellwego\/service\/(secrets|registry)/);
    }

    expect(calls).toEqual([]);
    expect(p.allLines().filter((line) => leaks(line, canary))).toEqual([]);
  });
});
