// `npm start` as root on a host that can run real VMs turns the VM network on by itself: run in a
// network namespace of its own (its own loopback and ports, so it meets no other platform on this
// host), the launcher says the network is on, and the node agent makes its bridge and its two
// nftables tables there. The host gets neither.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@shellwego/kit/process';
import { missingNetns, NetnsSet } from '@shellwego/testing/netns';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { missingVmHost } from '../e2e/support/vm-host.js';
import { NpmStart } from './support/npm-start.js';

const skipReason =
  missingVmHost() ??
  (await missingNetns()) ??
  ((findExecutable('nft') ?? findExecutable('/usr/sbin/nft')) ? undefined : 'nft (Debian package nftables; deploy/setup-host.sh installs it)');
if (skipReason !== undefined) console.warn(`[npm-start-network] SKIPPING: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('npm start and the VM network', () => {
  it('turns the network on as root with /dev/net/tun and nftables: bridge and tables in its namespace, none on the host', { timeout: 420_000 }, async () => {
    const netns = new NetnsSet();
    const home = await mkdtemp(join(tmpdir(), 'swstartnet-'));
    let launch: NpmStart | undefined;
    try {
      const ns = await netns.add('host');
      // Unset: the launcher decides (the other launcher tests set it to false).
      launch = NpmStart.start({ home, netns: ns, env: { SHELLWEGO_NODE_AGENT_NETWORK: '', SHELLWEGO_DATABASE_URL: '' } });
      const said = await launch.waitFor('shellwego: VM network', 300_000);
      expect(said).toContain('shellwego: VM network on');
      await launch.waitFor('shellwego is up', 300_000);

      // The agent opens its network once the scheduler has given it a subnet, on its first session.
      await expect
        .poll(async () => (await netns.run(ns, ['nft', 'list', 'tables'])).stdout, { timeout: 60_000, interval: 500 })
        .toContain('table bridge shellwego');
      const bridge = JSON.parse(await netns.ip(ns, ['-j', 'addr', 'show', 'dev', 'swg0'])) as Array<{
        flags: string[];
        addr_info: Array<{ family: string; local: string }>;
      }>;
      expect(bridge[0]?.flags).toContain('UP');
      // The gateway address of the node's subnet.
      expect(bridge[0]?.addr_info.filter((a) => a.family === 'inet').map((a) => a.local)).toEqual([expect.stringMatching(/^\d+\.\d+\.\d+\.1$/)]);
      const tables = (await netns.run(ns, ['nft', 'list', 'tables'])).stdout;
      expect(tables).toContain('table inet shellwego');
      expect(tables).toContain('table bridge shellwego');
      expect((await netns.run(ns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1');

      expect((await execa('ip', ['link', 'show', 'swg0'], { reject: false })).exitCode).not.toBe(0);
      expect((await execa('nft', ['list', 'tables'], { reject: false })).stdout).not.toContain('shellwego');
      const { exit, leftovers } = await launch.stop();
      expect([0, 'SIGINT']).toContain(exit);
      expect(leftovers).toEqual([]);
    } finally {
      launch?.kill();
      await netns.remove();
      expect(await netns.leftovers()).toEqual([]);
      await rm(home, { recursive: true, force: true });
    }
  });
});
