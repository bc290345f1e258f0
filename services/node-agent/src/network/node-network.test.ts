// The node network and its nftables rules against the real kernel, in namespaces this test makes:
// a "node" namespace holding the agent's bridge and rules, one namespace per guest joined to the
// bridge by a veth whose node end carries the instance's TAP name (NodeNetwork takes over a device
// that exists, as it does for a re-adopted VM), and a "world" namespace standing in for the
// internet with a second address standing in for a control service. Every probe is a real busybox
// httpd or wget, or a UDP datagram, crossing the real bridge; each attack is first shown to work
// without the rule that stops it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@shellwego/kit/process';
import { capturingLogger } from '@shellwego/testing/logger';
import { missingNetns, NetnsSet } from '@shellwego/testing/netns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestMacFor, tapDeviceFor } from './instance-identity.js';
import { appSetName, firewallRuleset } from './node-firewall.js';
import { NodeNetwork } from './node-network.js';

const missing =
  (await missingNetns()) ??
  ((findExecutable('nft') ?? findExecutable('/usr/sbin/nft')) ? undefined : 'nft (Debian package nftables; deploy/setup-host.sh installs it)');
if (missing !== undefined) console.warn(`[node-network] SKIPPING: ${missing}`);

const BUSYBOX = '/bin/busybox';
const WORLD = '198.51.100.2';
const CONTROL = '198.51.100.3';
const NODE_WAN = '198.51.100.1';
const AGENT_PORT = '9443';

interface Guest {
  readonly id: string;
  readonly app: string;
  ns: string;
  address: string;
}

const netns = new NetnsSet();
let www = '';
let node = '';
let network: NodeNetwork | undefined;
const guests: Record<'a1' | 'a2' | 'b1', Guest> = {
  a1: { id: 'inst-a1', app: 'shop', ns: '', address: '' },
  a2: { id: 'inst-a2', app: 'shop', ns: '', address: '' },
  b1: { id: 'inst-b1', app: 'blog', ns: '', address: '' },
};
const listeners: Array<{ kill: () => boolean }> = [];

/** GET http://addr:port/path from a namespace: the body, or undefined when nothing answered within 3 s. */
async function fetchFrom(ns: string, addr: string, port: string, path = '/'): Promise<string | undefined> {
  // busybox nc, not wget: Debian's static busybox wget crashes (glibc NSS in a static binary).
  const result = await netns.run(ns, [BUSYBOX, 'nc', '-w', '3', addr, port], { input: `GET ${path} HTTP/1.0\r\n\r\n` });
  const body = result.stdout.split('\r\n\r\n')[1];
  return result.exitCode === 0 && body !== undefined ? body.trim() : undefined;
}

/** An httpd in the namespace answering `name` at / and the peer's address at /cgi-bin/peer. */
async function serve(ns: string, bind: string, name: string): Promise<void> {
  const dir = join(www, name);
  await mkdir(join(dir, 'cgi-bin'), { recursive: true });
  await writeFile(join(dir, 'index.html'), `${name}\n`);
  await writeFile(join(dir, 'cgi-bin', 'peer'), `#!${BUSYBOX} sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' "$REMOTE_ADDR"\n`, { mode: 0o755 });
  const child = netns.spawn(ns, [BUSYBOX, 'httpd', '-f', '-p', bind, '-h', dir]);
  listeners.push(child);
  const [addr = '', port = ''] = bind.includes(':') ? bind.split(':') : ['127.0.0.1', bind];
  for (let i = 0; i < 50; i++) {
    if ((await fetchFrom(ns, addr, port)) === name) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`httpd ${name} in ${ns} did not answer on ${bind}`);
}

/** Joins a guest namespace to the bridge the way a VM's TAP is: the node end named after the instance. */
async function addGuest(key: keyof typeof guests): Promise<void> {
  const guest = guests[key];
  guest.ns = await netns.add(key);
  await netns.veth({ ns: node, name: tapDeviceFor(guest.id) }, { ns: guest.ns, name: 'eth0', mac: guestMacFor(guest.id) });
  const attached = await (network as NodeNetwork).attach(guest.id, guest.app);
  guest.address = attached.address;
  await netns.ip(guest.ns, ['addr', 'add', attached.addressCidr, 'dev', 'eth0']);
  await netns.ip(guest.ns, ['route', 'add', 'default', 'via', attached.gateway]);
}

/** Sends UDP datagrams from the namespace; resolves with what a receiver in `to` got. */
async function udpReceived(from: string, to: Guest, port: number): Promise<string> {
  const receiver = netns.spawn(to.ns, [
    process.execPath,
    '-e',
    `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>console.log(r.address+' '+m));s.bind(${port},'${to.address}',()=>console.log('ready'))`,
  ]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the UDP receiver in ${to.ns} did not start`)), 10_000);
    receiver.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (let i = 0; i < 3; i++) {
    await netns.run(from, [process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send('datagram',${port},'${to.address}',()=>s.close())`]);
  }
  await new Promise((r) => setTimeout(r, 500));
  receiver.kill();
  const { stdout } = await receiver;
  return String(stdout)
    .split('\n')
    .filter((l) => l !== 'ready' && l !== '')
    .join('\n');
}

async function ruleset(): Promise<string> {
  return (await netns.run(node, ['nft', 'list', 'ruleset'])).stdout;
}

beforeAll(async () => {
  if (missing !== undefined) return;
  www = await mkdtemp(join(tmpdir(), 'swnet-www-'));
  node = await netns.add('node');
  const world = await netns.add('world');
  await netns.veth({ ns: node, name: 'wan0', cidr: `${NODE_WAN}/24` }, { ns: world, name: 'eth0', cidr: `${WORLD}/24` });
  await netns.ip(world, ['addr', 'add', `${CONTROL}/24`, 'dev', 'eth0']);
  network = await NodeNetwork.open({
    bridge: 'swg0',
    subnet: '10.88.0.0/24',
    dnsServers: [],
    blocked: [CONTROL],
    namespace: node,
    log: capturingLogger().logger,
  });
  // A TAP device left by an instance that is gone: the agent's start sweeps it.
  await netns.ip(node, ['tuntap', 'add', 'dev', tapDeviceFor('inst-gone'), 'mode', 'tap']);
  for (const key of ['a1', 'a2', 'b1'] as const) await addGuest(key);
  await serve(world, `${WORLD}:80`, 'world');
  await serve(world, `${CONTROL}:80`, 'control');
  // Stands in for the node agent's API and whatever else listens on the node's addresses.
  await serve(node, AGENT_PORT, 'agent');
  await serve(guests.a2.ns, `${guests.a2.address}:8080`, 'a2');
  await serve(guests.b1.ns, `${guests.b1.address}:8080`, 'b1');
}, 120_000);

afterAll(async () => {
  for (const l of listeners) l.kill();
  await netns.remove();
  expect(await netns.leftovers()).toEqual([]);
  if (www !== '') await rm(www, { recursive: true, force: true });
});

describe.skipIf(missing !== undefined)('node network rules (real nftables, namespaces with veths for TAPs)', () => {
  it('without the rules, every attack the rules stop gets through', async () => {
    const { a1, b1 } = guests;
    expect(await fetchFrom(a1.ns, b1.address, '8080')).toBe('b1');
    expect(await fetchFrom(a1.ns, '10.88.0.1', AGENT_PORT)).toBe('agent');
    expect(await fetchFrom(a1.ns, NODE_WAN, AGENT_PORT)).toBe('agent');
  });

  it('keeps apps apart, closes the node and the control services to guests, and masquerades the way out', { timeout: 60_000 }, async () => {
    await (network as NodeNetwork).completeAdoption();
    const { a1, a2, b1 } = guests;
    const nodeDevices = await netns.ip(node, ['-o', 'link', 'show']);
    expect(nodeDevices).not.toContain(tapDeviceFor('inst-gone'));
    expect(nodeDevices).toContain(`swg0: <BROADCAST,MULTICAST,UP,LOWER_UP>`);
    const [same, otherApp, otherAppBack, gateway, wan, control, world, peer, hostToGuest] = await Promise.all([
      fetchFrom(a1.ns, a2.address, '8080'),
      fetchFrom(a1.ns, b1.address, '8080'),
      fetchFrom(b1.ns, a2.address, '8080'),
      fetchFrom(a1.ns, '10.88.0.1', AGENT_PORT),
      fetchFrom(a1.ns, NODE_WAN, AGENT_PORT),
      fetchFrom(a1.ns, CONTROL, '80'),
      fetchFrom(a1.ns, WORLD, '80'),
      fetchFrom(a2.ns, WORLD, '80', '/cgi-bin/peer'),
      fetchFrom(node, a2.address, '8080'),
    ]);
    expect({ same, otherApp, otherAppBack, gateway, wan, control, world, peer, hostToGuest }).toEqual({
      same: 'a2',
      otherApp: undefined,
      otherAppBack: undefined,
      gateway: undefined,
      wan: undefined,
      control: undefined,
      world: 'world',
      // The world sees the node's address, not the guest's.
      peer: NODE_WAN,
      // The node itself (the ingress, later) opens connections to guests.
      hostToGuest: 'a2',
    });
  });

  it('drops what a guest sends from an address that is not its own', { timeout: 60_000 }, async () => {
    const { a1, a2, b1 } = guests;
    // The attack: b1 (app blog) takes a1's address (app shop) to pass the same-app rule towards a2.
    await netns.ip(b1.ns, ['addr', 'flush', 'dev', 'eth0']);
    await netns.ip(b1.ns, ['addr', 'add', `${a1.address}/24`, 'dev', 'eth0']);
    await netns.ip(b1.ns, ['neigh', 'replace', a2.address, 'lladdr', guestMacFor(a2.id), 'dev', 'eth0', 'nud', 'permanent']);
    expect(await udpReceived(b1.ns, a2, 5353)).toBe('');
    // The same rules without the anti-spoofing lines: the spoofed datagram passes as app shop's.
    const spec = {
      bridge: 'swg0',
      subnet: '10.88.0.0/24',
      blocked: [CONTROL],
      instances: Object.values(guests).map((g) => ({ instanceId: g.id, app: g.app, tap: tapDeviceFor(g.id), mac: guestMacFor(g.id), address: g.address })),
    };
    const withoutAntiSpoofing = firewallRuleset(spec)
      .split('\n')
      .filter((line) => !line.includes('saddr !='))
      .join('\n');
    expect((await netns.run(node, ['nft', '-f', '-'], { input: withoutAntiSpoofing })).exitCode).toBe(0);
    expect(await udpReceived(b1.ns, a2, 5354)).toBe(Array(3).fill(`${a1.address} datagram`).join('\n'));
    // Back to the agent's rules.
    await (network as NodeNetwork).completeAdoption();
    expect(await udpReceived(b1.ns, a2, 5355)).toBe('');
    // b1 gets its own address back; what its spoofing taught the node's neighbour table goes too.
    await netns.ip(b1.ns, ['addr', 'flush', 'dev', 'eth0']);
    await netns.ip(b1.ns, ['addr', 'add', `${b1.address}/24`, 'dev', 'eth0']);
    await netns.ip(node, ['neigh', 'flush', 'dev', 'swg0']);
  });

  it('leaves nothing of a detached instance and rebuilds exactly the adopted ones after a restart', { timeout: 60_000 }, async () => {
    const { a1, a2, b1 } = guests;
    await (network as NodeNetwork).detach(b1.id);
    const afterDetach = await ruleset();
    expect(afterDetach).not.toContain(tapDeviceFor(b1.id));
    expect(afterDetach).not.toContain(b1.address);
    expect(afterDetach).not.toContain(appSetName(b1.app));
    expect(afterDetach).toContain(appSetName(a1.app));
    expect(await netns.ip(node, ['-o', 'link', 'show'])).not.toContain(tapDeviceFor(b1.id));

    // A restarted agent: a1 survived, a2's VM is gone (its TAP stays until the sweep).
    const restarted = await NodeNetwork.open({
      bridge: 'swg0',
      subnet: '10.88.0.0/24',
      dnsServers: [],
      blocked: [CONTROL],
      namespace: node,
      log: capturingLogger().logger,
    });
    // Until adoption completes the previous agent's rules stay in force.
    expect(await fetchFrom(a1.ns, a2.address, '8080')).toBe('a2');
    restarted.reserve(a1.id, a1.app, a1.address);
    await restarted.completeAdoption();
    const rules = await ruleset();
    expect(rules).toContain(tapDeviceFor(a1.id));
    expect(rules).not.toContain(tapDeviceFor(a2.id));
    expect(rules).not.toContain(a2.address);
    expect(await netns.ip(node, ['-o', 'link', 'show'])).not.toContain(tapDeviceFor(a2.id));
    expect(await fetchFrom(a1.ns, WORLD, '80')).toBe('world');
    expect(await fetchFrom(a1.ns, '10.88.0.1', AGENT_PORT)).toBeUndefined();
    await restarted.remove();
    expect(await ruleset()).not.toContain('shellwego');
  });
});
