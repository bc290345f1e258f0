// The secret path end to end with the node agent on the process driver (fast, no VM): every
// service a separate process over mTLS, the app image built here, the secret set through the CLI,
// the workload's sha256 of it read back through the node agent, `app rm` cleaning up, and the
// plaintext nowhere on the host: not in any platform process's environment or command line while
// the workload runs (only in the workload's own), nor in any file, line or row afterwards.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { freePort } from '@shellwego/testing/free-port';
import { busyboxMissing } from '@shellwego/testing/images/busybox';
import { leaks, scanDatabases, scanFiles } from '@shellwego/testing/leak-scan/leak-scan';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryFlow, expectNoLeak } from './support/canary-flow.js';
import { NodePlatform } from './support/node-platform.js';

const skip = busyboxMissing();
if (skip !== undefined) console.warn(`[secret-path-process] SKIPPING: ${skip}`);

let platform: NodePlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

describe.skipIf(skip !== undefined)('secret path end to end, node agent on the process driver', () => {
  it('deploys an app with a secret to HEALTHY, returns its output, removes it cleanly and leaks the secret nowhere', { timeout: 180_000 }, async () => {
    platform = await NodePlatform.start();
    const p = platform;
    await p.addAgent({ key: 'proc', driver: 'process' });
    const result = await canaryFlow(p, { agentKey: 'proc', app: 'canary', port: await freePort(), memory: '64Mi', healthyTimeoutMs: 60_000 });
    console.log(`[secret-path-process] ms after ASSIGNED: ${JSON.stringify(result.phases)}`);
    const started = p.agent('proc').process.lines.find((line) => line.includes('"workload started"'));
    expect(started).toBeDefined();

    // The guest agent's log, kept with its work dir, is among what the sweep reads.
    expect(result.keptFiles.map((file) => basename(file))).toContain('guest-agent.log');

    await p.stopProcesses();
    await expectNoLeak(p, result.canary, result.keptFiles);

    // The node's private key was made on the node, is readable by its owner only, and never left it.
    const keyPath = join(p.agent('proc').stateDir, 'identity', 'node.key');
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    // The second line of the PEM body: private scalar and public key, unlike the first (a prefix every P-256 key shares).
    const keyBody = Buffer.from((await readFile(keyPath, 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('-----'))[1] ?? 'missing');
    expect((await scanFiles([p.home], keyBody)).leaking).toEqual([keyPath]);
    expect(p.allLines().filter((line) => leaks(line, keyBody))).toEqual([]);
    expect((await scanDatabases(p.home, ['scheduler'], keyBody)).leaking).toEqual([]);
  });
});
