// The Python (grpcio) and C++ (grpc++) clients of packages/contracts/clients/, generated from
// proto/ with buf and built here, call every service of a running platform (separate processes
// over mTLS, node agent on the process driver) with the admin's user certificate: each read RPC
// of scheduler, secrets, registry and node agent, and the server-streaming WatchEvents. Both
// must see what the platform holds: the app, its instance, the node, the secret, the image.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryImageArchive } from '../e2e/support/canary-image.js';
import { NodePlatform } from '../e2e/support/node-platform.js';
import { buildCppClient, missingClientTools, preparePythonClient } from './client-builds.js';

interface CallResult {
  readonly code: string;
  readonly details?: string;
  readonly response?: Record<string, unknown>;
  readonly events?: Record<string, unknown>[];
}

const missing = missingClientTools();
const skip = busyboxMissing() ?? (missing.length > 0 ? `missing Debian packages ${missing.join(', ')}: run bash deploy/setup-host.sh` : undefined);
if (skip !== undefined) console.warn(`[clients] SKIPPING: ${skip}`);

const READ_CALLS = [
  'AppService/ListApps',
  'AppService/GetApp',
  'AppService/ListInstances',
  'AppService/WatchEvents',
  'NodeService/ListNodes',
  'SecretsService/ListSecrets',
  'SecretsService/ListSecretVersions',
  'SecretsService/GetMasterKeyStatus',
  'SecretsService/ListAuditEvents',
  'RegistryService/ListImages',
  'RegistryService/ResolveImage',
  'NodeAgentService/GetNodeStatus',
];

let platform: NodePlatform | undefined;
let work: string | undefined;
afterAll(async () => {
  await platform?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip !== undefined)('clients in Python and C++ for every service', () => {
  it('call every read RPC and WatchEvents of scheduler, secrets, registry and node agent over mTLS', { timeout: 600_000 }, async () => {
    work = await mkdtemp(join(tmpdir(), 'shellwego-clients-'));
    // Build while the platform starts: compiling the C++ stubs takes most of the time.
    const [python, cpp, p] = await Promise.all([preparePythonClient(work), buildCppClient(work), NodePlatform.start()]);
    platform = p;
    const agent = await p.addAgent({ key: 'proc', driver: 'process' });
    const digest = await p.importImage('shown:1', await canaryImageArchive('shown:1'));
    await p.setSecret('shown', 'TOKEN', Buffer.from('not-printed-by-any-read'));
    // Required label no node has: the app and its instance exist, nothing needs to run.
    const deploy = await p.cli(['app', 'deploy', 'shown', '--image', 'shown:1', '--secret', 'TOKEN', '--memory', '64Mi', '--label', 'zone=elsewhere']);
    expect(deploy.exitCode, deploy.stderr).toBe(0);

    const target = (url: string) => new URL(url).host;
    const args = [
      p.platform.pki.caCert,
      p.platform.pki.admin.cert,
      p.platform.pki.admin.key,
      target(p.platform.url('scheduler')),
      target(p.platform.url('secrets')),
      target(p.platform.url('registry')),
      target(agent.process.url),
      'shown',
      'TOKEN',
      'shown:1',
    ];
    for (const [language, run] of [
      ['python', python],
      ['c++', cpp],
    ] as const) {
      const results = JSON.parse(await run(args)) as Record<string, CallResult>;
      expect(Object.keys(results).sort(), language).toEqual([...READ_CALLS].sort());
      for (const call of READ_CALLS) expect(results[call]?.code, `${language} ${call}: ${results[call]?.details ?? ''}`).toBe('OK');
      const response = (call: string) => results[call]?.response ?? {};

      expect(
        (response('AppService/ListApps').apps as { name: string }[]).map((a) => a.name),
        language,
      ).toContain('shown');
      expect((response('AppService/GetApp').app as { name: string }).name).toBe('shown');
      expect(response('AppService/ListInstances').instances as unknown[]).toHaveLength(1);
      expect((response('NodeService/ListNodes').nodes as { id: string }[]).map((n) => n.id)).toEqual([agent.nodeId]);
      const events = results['AppService/WatchEvents']?.events ?? [];
      expect(events.length, language).toBeGreaterThan(2);
      expect(events.some((e) => e.nodeId === agent.nodeId)).toBe(true);
      expect(events.some((e) => JSON.stringify(e).includes('"shown"'))).toBe(true);
      expect((response('SecretsService/ListSecrets').secrets as { name: string }[]).map((s) => s.name)).toContain('TOKEN');
      expect(response('SecretsService/ListSecretVersions').versions as unknown[]).toHaveLength(1);
      expect(response('SecretsService/GetMasterKeyStatus').currentKekId).toMatch(/\S/);
      expect((response('SecretsService/ListAuditEvents').events as unknown[]).length).toBeGreaterThan(0);
      expect((response('RegistryService/ListImages').images as { digest: string }[]).map((i) => i.digest)).toContain(digest);
      expect((response('RegistryService/ResolveImage').image as { digest: string }).digest).toBe(digest);
      expect(response('NodeAgentService/GetNodeStatus').nodeId).toBe(agent.nodeId);
    }
  });
});
