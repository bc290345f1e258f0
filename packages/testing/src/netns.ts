// Network namespaces a test creates for itself (ip netns), joined by veth pairs, so network tests
// never touch the host's interfaces, routes or nftables rules. Every name carries a random tag;
// remove() deletes every namespace this set made (and with them their veths, bridges, TAPs and
// nftables tables), and leftovers() lists any that survived, for the test to assert none did.
import { randomBytes } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';

export class NetnsSet {
  /** e.g. "sw3fa81c": namespace names are `<tag>-<name>`. */
  readonly tag = `sw${randomBytes(3).toString('hex')}`;
  private readonly made: string[] = [];

  /** Creates a namespace with its loopback UP; returns its full name. */
  async add(name: string): Promise<string> {
    const ns = `${this.tag}-${name}`;
    await execa('ip', ['netns', 'add', ns]);
    this.made.push(ns);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** `ip -n ns ...`. */
  async ip(ns: string, args: readonly string[]): Promise<string> {
    return (await execa('ip', ['-n', ns, ...args])).stdout;
  }

  /** Runs a command inside the namespace; never throws on a non-zero exit. */
  run(ns: string, argv: readonly string[], options: { timeout?: number; input?: string } = {}) {
    return execa('ip', ['netns', 'exec', ns, ...argv], {
      reject: false,
      timeout: options.timeout ?? 20_000,
      ...(options.input === undefined ? {} : { input: options.input }),
    });
  }

  /** Starts a long-running command inside the namespace (a listener); the caller kills it. */
  spawn(ns: string, argv: readonly string[]): ResultPromise {
    return execa('ip', ['netns', 'exec', ns, ...argv], { reject: false, buffer: true });
  }

  /**
   * A veth pair: `aName` in namespace a, `bName` in namespace b, both UP, with an address each
   * (CIDR form; undefined for none) and, optionally, a MAC on the b side.
   */
  async veth(a: { ns: string; name: string; cidr?: string }, b: { ns: string; name: string; cidr?: string; mac?: string }): Promise<void> {
    await this.ip(a.ns, ['link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns]);
    if (b.mac !== undefined) await this.ip(b.ns, ['link', 'set', b.name, 'address', b.mac]);
    for (const end of [a, b]) {
      if (end.cidr !== undefined) await this.ip(end.ns, ['addr', 'add', end.cidr, 'dev', end.name]);
      await this.ip(end.ns, ['link', 'set', end.name, 'up']);
    }
  }

  /** The namespaces of this set that exist now. */
  async leftovers(): Promise<string[]> {
    const { stdout } = await execa('ip', ['netns', 'list']);
    return stdout
      .split('\n')
      .map((line) => line.split(' ')[0] ?? '')
      .filter((ns) => ns.startsWith(`${this.tag}-`));
  }

  /** Deletes every namespace this set made; safe to call twice. */
  async remove(): Promise<void> {
    for (const ns of this.made.splice(0)) {
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
  }
}

/** Whether this process may create network namespaces (root with iproute2), else why not. */
export async function missingNetns(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)';
  const probe = await execa('ip', ['netns', 'list'], { reject: false });
  return probe.exitCode === 0 ? undefined : `ip netns does not work here: ${probe.stderr.trim()}`;
}
