// Real VMs (qemu driver, TCG) on the node network, with the node agent's bridge, TAPs, nftables
// rules and QEMU itself inside a network namespace this test makes ("node"); a second namespace
// joined by a veth ("world") stands in for the internet, with a second address standing in for a
// control service on another host (NETWORK_BLOCKED). Three VMs in one boot: app alpha twice, app
// beta once, all running one busybox script that serves its app name on :8080 and, every two
// seconds, fetches a plan from the world's httpd and runs each new round of it once, printing one
// `probe <round> <label> <answer|FAIL>` line per connection it tries. The test writes the rounds
// once it knows the addresses, and reads the answers from the instances' output.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@connectrpc/connect';
import type { NodeAgentService } from '@shellwego/contracts/agent/v1/agent_pb';
import { InstanceState } from '@shellwego/contracts/common/v1/workload_pb';
import { formatIpv4, formatSubnet, gatewayOf, instanceAddresses, parseIpv4Subnet } from '@shellwego/kit/net';
import { findExecutable } from '@shellwego/kit/process';
import { tapDeviceFor } from '@shellwego/node-agent';
import { missingNetns, NetnsSet } from '@shellwego/testing/netns';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { lineAppears, logsUntil } from './support/instance-watch.js';
import { NodePlatform } from './support/node-platform.js';
import { scriptImageArchive } from './support/script-image.js';
import { missingVmHost } from './support/vm-host.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUSYBOX = '/bin/busybox';
const NODE_WAN = '198.51.100.1';
const WORLD = '198.51.100.2';
const CONTROL = '198.51.100.3';
/** Where the stand-in for the node agent's API listens on every address of the node. */
const AGENT_PORT = '9443';

const ipBinary = findExecutable('ip') ?? findExecutable('/usr/sbin/ip') ?? findExecutable('/sbin/ip');
const qemuBinary = findExecutable('qemu-system-x86_64') ?? findExecutable('/usr/bin/qemu-system-x86_64');
const skipReason =
  missingVmHost() ??
  (await missingNetns()) ??
  ((findExecutable('nft') ?? findExecutable('/usr/sbin/nft')) ? undefined : 'nft (Debian package nftables; deploy/setup-host.sh installs it)');
if (skipReason !== undefined) console.warn(`[vm-network] SKIPPING the real VM network test: ${skipReason}`);

// The workload. `probe LABEL HOST PORT [PATH]` prints the last line of the answer (the body) or FAIL.
const WORKLOAD = `
probe() {
  answer=$(printf 'GET %s HTTP/1.0\\r\\n\\r\\n' "\${4:-/}" | busybox nc -w 3 "$2" "$3" 2>/dev/null | busybox tail -n 1 | busybox tr -d '\\r')
  echo "probe $ROUND $1 \${answer:-FAIL}"
}
busybox mkdir -p /tmp/www
echo "$APP" > /tmp/www/index.html
busybox httpd -p 8080 -h /tmp/www
echo "serving $APP"
ROUND=0
done_round=0
while :; do
  if printf 'GET /plan HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 ${WORLD} 80 > /tmp/response 2>/dev/null; then
    busybox awk 'body { print } /^\\r?$/ { body = 1 }' /tmp/response > /tmp/plan
    . /tmp/plan
    if [ "$ROUND" != "$done_round" ]; then
      done_round=$ROUND
      run_plan
      echo "round $ROUND done"
    fi
  fi
  busybox sleep 2
done
`;

const netns = new NetnsSet();
let platform: NodePlatform | undefined;
let www = '';
const listeners: Array<{ kill: () => boolean }> = [];

afterAll(async () => {
  await platform?.stop();
  for (const l of listeners) l.kill();
  await netns.remove();
  expect(await netns.leftovers()).toEqual([]);
  if (www !== '') await rm(www, { recursive: true, force: true });
});

/** An httpd in the namespace serving `dir` (with /cgi-bin/peer answering the caller's address). */
async function serve(ns: string, bind: string, dir: string, body: string): Promise<void> {
  await mkdir(join(dir, 'cgi-bin'), { recursive: true });
  await writeFile(join(dir, 'index.html'), `${body}\n`);
  await writeFile(join(dir, 'cgi-bin', 'peer'), `#!${BUSYBOX} sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' "$REMOTE_ADDR"\n`);
  await chmod(join(dir, 'cgi-bin', 'peer'), 0o755);
  listeners.push(netns.spawn(ns, [BUSYBOX, 'httpd', '-f', '-p', bind, '-h', dir]));
}

/** GET / from a namespace with busybox nc (Debian's static busybox wget crashes): the body, or undefined. */
async function fetchFrom(ns: string, addr: string, port: string): Promise<string | undefined> {
  const result = await netns.run(ns, [BUSYBOX, 'nc', '-w', '5', addr, port], { input: 'GET / HTTP/1.0\r\n\r\n' });
  const body = result.stdout.split('\r\n\r\n')[1];
  return result.exitCode === 0 && body !== undefined ? body.trim() : undefined;
}

/** The IPv4 addresses (CIDR form) of a device in a namespace. */
async function ipv4Of(ns: string, device: string): Promise<string[]> {
  const links = JSON.parse(await netns.ip(ns, ['-j', 'addr', 'show', 'dev', device])) as Array<{
    addr_info: Array<{ family: string; local: string; prefixlen: number }>;
  }>;
  return links.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
}

interface Running {
  readonly instanceId: string;
  readonly app: string;
  readonly address: string;
}

async function runningInstances(client: Client<typeof NodeAgentService>, count: number, timeoutMs: number): Promise<Running[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await client.getNodeStatus({});
    const failed = status.instances.find((i) => i.state === InstanceState.FAILED);
    if (failed !== undefined) throw new Error(`instance ${failed.instanceId} of ${failed.app} FAILED: ${failed.reason}`);
    const running = status.instances.filter((i) => i.state === InstanceState.RUNNING || i.state === InstanceState.HEALTHY);
    if (running.length === count) return running.map((i) => ({ instanceId: i.instanceId, app: i.app, address: i.address }));
    if (Date.now() > deadline) throw new Error(`${running.length} of ${count} instances RUNNING after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** The probe lines of one round from an instance's output: label -> answer. */
async function roundOf(client: Client<typeof NodeAgentService>, instanceId: string, round: number): Promise<Record<string, string>> {
  const output = await logsUntil(client, instanceId, `round ${round} done`, 180_000);
  const probes: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const [word, r, label, ...answer] = line.trim().split(' ');
    if (word === 'probe' && r === String(round) && label !== undefined) probes[label] = answer.join(' ');
  }
  return probes;
}

describe.skipIf(skipReason !== undefined)('the VM network with real VMs (qemu driver, nftables)', () => {
  it('bridges, isolates, NATs and cleans up three VMs of two apps', { timeout: 900_000 }, async ({ skip }) => {
    www = await mkdtemp(join(tmpdir(), 'swvmnet-'));
    const node = await netns.add('node');
    const world = await netns.add('world');
    await netns.veth({ ns: node, name: 'wan0', cidr: `${NODE_WAN}/24` }, { ns: world, name: 'eth0', cidr: `${WORLD}/24` });
    await netns.ip(world, ['addr', 'add', `${CONTROL}/24`, 'dev', 'eth0']);
    await serve(world, `${WORLD}:80`, join(www, 'world'), 'world');
    await serve(world, `${CONTROL}:80`, join(www, 'control'), 'control');
    await serve(node, AGENT_PORT, join(www, 'agent'), 'agent');
    await writeFile(join(www, 'world', 'plan'), 'ROUND=0\n');

    platform = await NodePlatform.start();
    const p = platform;
    const build = await execa('bash', [join(repo, 'deploy/guest-image/build.sh'), '--agent', p.guestAgentBundle], { reject: false });
    if (build.exitCode === 3) skip(`guest image build: ${build.stderr.trim().split('\n').at(-1) ?? ''}`);
    expect(build.exitCode, build.stderr).toBe(0);
    const imageDir = build.stdout.trim().split('\n').at(-1) ?? '';
    // QEMU opens its TAP device in the namespace that holds it.
    const qemuWrapper = join(www, 'qemu-in-netns');
    await writeFile(qemuWrapper, `#!/bin/sh\nexec ${ipBinary ?? 'ip'} netns exec ${node} ${qemuBinary ?? 'qemu-system-x86_64'} "$@"\n`);
    await chmod(qemuWrapper, 0o755);
    const agent = await p.addAgent({
      key: 'vm',
      driver: 'qemu',
      env: {
        SHELLWEGO_NODE_AGENT_GUEST_IMAGE_DIR: imageDir,
        SHELLWEGO_NODE_AGENT_BOOT_TIMEOUT: '300s',
        SHELLWEGO_NODE_AGENT_QEMU_BINARY: qemuWrapper,
        SHELLWEGO_NODE_AGENT_NETWORK: 'true',
        SHELLWEGO_NODE_AGENT_NETWORK_NAMESPACE: node,
        SHELLWEGO_NODE_AGENT_NETWORK_BLOCKED: CONTROL,
      },
    });

    await p.importImage('netprobe:1', await scriptImageArchive('netprobe:1', WORKLOAD));
    for (const [app, replicas] of [
      ['alpha', '2'],
      ['beta', '1'],
    ] as const) {
      const deploy = await p.cli([
        'app',
        'deploy',
        app,
        '--image',
        'netprobe:1',
        '--env',
        `APP=${app}`,
        '--replicas',
        replicas,
        '--memory',
        '192Mi',
        '--label',
        'role=vm',
      ]);
      expect(deploy.exitCode, deploy.stderr).toBe(0);
    }
    const instances = await runningInstances(agent.client, 3, 600_000);
    const alphas = instances.filter((i) => i.app === 'alpha');
    const [alpha1, alpha2] = alphas;
    const beta = instances.find((i) => i.app === 'beta');
    if (alpha1 === undefined || alpha2 === undefined || beta === undefined) throw new Error(`expected two alpha and one beta: ${JSON.stringify(instances)}`);
    console.log(`[vm-network] instances: ${JSON.stringify(instances)}`);
    // The bridge holds the subnet's first address (the guests' gateway); each guest another one of it.
    const [bridgeAddress, ...more] = await ipv4Of(node, 'swg0');
    expect(more).toEqual([]);
    const subnet = parseIpv4Subnet(bridgeAddress ?? '');
    if (subnet === undefined) throw new Error(`the bridge has no IPv4 subnet address: ${bridgeAddress}`);
    const gateway = formatIpv4(gatewayOf(subnet));
    expect(bridgeAddress).toBe(`${gateway}/${subnet.prefixLength}`);
    const inSubnet = new Set([...instanceAddresses(subnet)].map(formatIpv4));
    for (const i of instances) expect(inSubnet.has(i.address), `${i.address} in ${formatSubnet(subnet)}`).toBe(true);
    expect(new Set(instances.map((i) => i.address)).size).toBe(3);

    // The bridge and every TAP exist and are UP, the TAPs on the bridge.
    const links = JSON.parse(await netns.ip(node, ['-j', 'link', 'show'])) as Array<{ ifname: string; operstate: string; flags: string[]; master?: string }>;
    const bridge = links.find((l) => l.ifname === 'swg0');
    expect(bridge?.flags).toContain('UP');
    for (const i of instances) {
      const tap = links.find((l) => l.ifname === tapDeviceFor(i.instanceId));
      expect(tap, `TAP of ${i.instanceId}`).toMatchObject({ master: 'swg0', operstate: 'UP' });
      expect(tap?.flags).toContain('UP');
    }

    // The node reaches its guests: ping and TCP.
    for (const i of instances) {
      const ping = await netns.run(node, [BUSYBOX, 'ping', '-c', '3', '-W', '5', i.address]);
      expect(ping.exitCode, `ping ${i.address}: ${ping.stdout}${ping.stderr}`).toBe(0);
      await expect.poll(() => fetchFrom(node, i.address, '8080'), { timeout: 60_000, interval: 1_000 }).toBe(i.app);
    }

    // Round 1: what every guest can and cannot reach.
    const reachPlan = (round: number) =>
      [
        `ROUND=${round}`,
        'run_plan() {',
        `  probe world ${WORLD} 80`,
        `  probe nat ${WORLD} 80 /cgi-bin/peer`,
        `  probe control ${CONTROL} 80`,
        `  probe agent-gateway ${gateway} ${AGENT_PORT}`,
        `  probe agent-wan ${NODE_WAN} ${AGENT_PORT}`,
        `  probe alpha1 ${alpha1.address} 8080`,
        `  probe alpha2 ${alpha2.address} 8080`,
        `  probe beta ${beta.address} 8080`,
        '}',
        '',
      ].join('\n');
    const expectReach = async (round: number) => {
      await writeFile(join(www, 'world', 'plan'), reachPlan(round));
      const seen = Object.fromEntries(await Promise.all(instances.map(async (i) => [i.instanceId, await roundOf(agent.client, i.instanceId, round)] as const)));
      console.log(`[vm-network] round ${round}: ${JSON.stringify(seen)}`);
      const outside = { world: 'world', nat: NODE_WAN, control: 'FAIL', 'agent-gateway': 'FAIL', 'agent-wan': 'FAIL' };
      expect(seen[alpha1.instanceId]).toEqual({ ...outside, alpha1: 'alpha', alpha2: 'alpha', beta: 'FAIL' });
      expect(seen[alpha2.instanceId]).toEqual({ ...outside, alpha1: 'alpha', alpha2: 'alpha', beta: 'FAIL' });
      expect(seen[beta.instanceId]).toEqual({ ...outside, alpha1: 'FAIL', alpha2: 'FAIL', beta: 'beta' });
    };
    await expectReach(1);

    // Round 2: beta takes alpha1's address to pass as alpha towards alpha2, then takes its own back.
    await writeFile(
      join(www, 'world', 'plan'),
      [
        'ROUND=2',
        'run_plan() {',
        '  [ "$APP" = beta ] || return 0',
        '  busybox ip addr flush dev eth0',
        `  busybox ip addr add ${alpha1.address}/24 dev eth0`,
        `  probe spoofed ${alpha2.address} 8080`,
        '  busybox ip addr flush dev eth0',
        `  busybox ip addr add ${beta.address}/24 dev eth0`,
        `  busybox ip route add default via ${gateway}`,
        `  probe restored ${WORLD} 80`,
        '}',
        '',
      ].join('\n'),
    );
    expect(await roundOf(agent.client, beta.instanceId, 2)).toEqual({ spoofed: 'FAIL', restored: 'world' });

    // The agent killed (its VMs run on) and started again: it re-adopts them, rebuilds their rules
    // and sweeps a TAP device no instance owns; round 3 sees exactly what round 1 saw.
    const staleTap = tapDeviceFor('an-instance-that-is-gone');
    await netns.ip(node, ['tuntap', 'add', 'dev', staleTap, 'mode', 'tap']);
    expect(await p.platform.stopProcess('vm', 'SIGKILL')).toBe('SIGKILL');
    const from = p.agentProcess('vm').lines.length;
    const restarted = await p.platform.restartProcess('vm');
    await lineAppears(restarted.lines, (line) => line.includes('re-adopted running instances'), from, 120_000, 'the agent re-adopts the VMs');
    expect(await netns.ip(node, ['-o', 'link', 'show'])).not.toContain(staleTap);
    await expectReach(3);

    // After app rm: no TAP, address, route or nftables element of either app is left.
    for (const app of ['alpha', 'beta']) {
      const rm = await p.cli(['app', 'rm', app]);
      expect(rm.exitCode, rm.stderr).toBe(0);
    }
    await expect
      .poll(async () => (await agent.client.getNodeStatus({})).instances.filter((i) => i.state !== InstanceState.STOPPED).map((i) => i.instanceId), {
        timeout: 120_000,
        interval: 1_000,
      })
      .toEqual([]);
    const after = await netns.ip(node, ['-o', 'link', 'show']);
    for (const i of instances) expect(after).not.toContain(tapDeviceFor(i.instanceId));
    expect(after).not.toMatch(/swt[0-9a-f]{12}/);
    const routes = await netns.ip(node, ['route', 'show']);
    expect(await ipv4Of(node, 'swg0')).toEqual([bridgeAddress]);
    const rules = (await netns.run(node, ['nft', 'list', 'ruleset'])).stdout;
    for (const i of instances) {
      expect(routes).not.toContain(i.address);
      expect(rules).not.toContain(i.address);
      expect(rules).not.toContain(tapDeviceFor(i.instanceId));
    }
    expect(rules).not.toMatch(/set app_/);
  });
});
