import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryFlow, expectNoLeak } from './support/canary-flow.js';
import { NodePlatform } from './support/node-platform.js';
import { missingVmHost } from './support/vm-host.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const skipReason = missingVmHost();
if (skipReason !== undefined) console.warn(`[secret-path-vm] SKIPPING the real VM test: ${skipReason}`);

let platform: NodePlatform | undefined;
afterAll(async () => {
  await platform?.stop();
});

describe.skipIf(skipReason !== undefined)('secret path end to end in a real VM (qemu driver)', () => {
  it('boots the app in a VM with its secret, reads the hash back, removes it cleanly and leaks nothing', { timeout: 600_000 }, async ({ skip }) => {
    platform = await NodePlatform.start();
    const p = platform;
    const build = await execa('bash', [join(repo, 'deploy/guest-image/build.sh'), '--agent', p.guestAgentBundle], { reject: false });
    if (build.exitCode === 3) skip(`guest image build: ${build.stderr.trim().split('\n').at(-1) ?? ''}`);
    expect(build.exitCode, build.stderr).toBe(0);
    const imageDir = build.stdout.trim().split('\n').at(-1) ?? '';

    await p.addAgent({
      key: 'vm',
      driver: 'qemu',
      env: { SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR: imageDir, SHELLWEGO_NODE_AGENT_BOOT_TIMEOUT: '300s' },
    });
    const status = await p.agent('vm').client.getNodeStatus({});
    expect(status).toMatchObject({ driver: 'qemu', connected: true });

    const result = await canaryFlow(p, { agentKey: 'vm', app: 'canary-vm', port: 8080, memory: '256Mi', healthyTimeoutMs: 400_000 });
    const started = p.agent('vm').process.lines.find((line) => line.includes('"workload started"')) ?? '{}';
    const phases = JSON.parse(started) as Record<string, unknown>;
    console.log(
      `[secret-path-vm] qemu/TCG cold start, ms: fetch ${String(phases.fetchMs)}, VM boot ${String(phases.bootMs)}, boot -> guest agent ready ${String(phases.readyMs)}, ` +
        `secrets ${String(phases.secretsMs)}, Run ${String(phases.runMs)}, agent's own share ${String(phases.agentMs)}; events after ASSIGNED: ${JSON.stringify(result.phases)}`,
    );

    // The VM's serial console and QEMU's own log, kept with its work dir, are among what the sweep reads.
    expect(result.keptFiles.map((file) => basename(file))).toEqual(expect.arrayContaining(['console.log', 'qemu.log']));

    await p.stopProcesses();
    await expectNoLeak(p, result.canary, result.keptFiles);
  });
});
