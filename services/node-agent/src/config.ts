import { boolean, defaultPorts, defineConfig, duration, integer, keyValues, optional, path, string, url, urlList } from '@shellwego/kit/config';
import { serverSettings } from '@shellwego/kit/service';
import { vmDriverSettings } from './drivers/index.js';

const MIB = 1024 * 1024;

/** Settings of the node agent; env vars start with SHELLWEGO_NODE_AGENT_. */
export const nodeAgentConfig = defineConfig('SHELLWEGO_NODE_AGENT', {
  ...serverSettings('node-agent', defaultPorts.nodeAgent),
  ...vmDriverSettings(),
  stateDir: path({
    default: '$SHELLWEGO_HOME/node-agent',
    description: 'node identity, local instance state (no secrets), rootfs cache and per-VM work dirs; keep it short (VM sockets live under it)',
  }),
  schedulerUrls: urlList({
    default: `https://127.0.0.1:${defaultPorts.scheduler}`,
    description: 'scheduler replicas, comma-separated; the Session moves on when one answers UNAVAILABLE (a standby)',
  }),
  secretsUrl: url({ default: `https://127.0.0.1:${defaultPorts.secrets}`, protocols: ['https'], description: 'the secrets service (ResolveSecrets)' }),
  registryUrl: url({ default: `https://127.0.0.1:${defaultPorts.registry}`, protocols: ['https'], description: 'the registry (FetchRootfs)' }),
  joinToken: optional(string({ sensitive: true, description: 'one-time join token (`shellwego node token create`); used only until the node has joined' })),
  joinTokenFile: optional(path({ description: 'file holding the join token (instead of JOIN_TOKEN)' })),
  hostname: optional(string({ description: "the name the node reports (default: this host's name)" })),
  labels: keyValues({ description: 'labels the node reports, e.g. "zone=a,disk=ssd"' }),
  reservedCpuMillis: integer({ default: 0, min: 0, description: 'CPU kept for the host, in thousandths of a core, subtracted from the detected CPUs' }),
  reservedMemoryMib: integer({ default: 512, min: 0, description: 'memory kept for the host, in MiB, subtracted from the detected memory' }),
  capacityCpuMillis: optional(integer({ min: 1, description: 'CPU offered to the scheduler instead of the detected CPUs minus the reserve' })),
  capacityMemoryMib: optional(integer({ min: 1, description: 'memory offered to the scheduler instead of the detected memory minus the reserve' })),
  maxInstances: integer({ default: 100, min: 1, max: 100_000, description: 'most instances this node runs at once' }),
  heartbeatInterval: duration({ default: '5s', description: 'how often a heartbeat goes to the scheduler (keep it below the scheduler heartbeat interval)' }),
  guestImageDir: optional(
    path({ description: 'kernel + initramfs (deploy/guest-image/build.sh output) for the qemu and firecracker drivers; default: build.sh is run (cached)' }),
  ),
  bootTimeout: duration({ default: '120s', description: 'how long a VM may take from boot to its guest agent answering' }),
  runTimeout: duration({ default: '60s', description: 'how long the guest agent may take to start the workload (Run, InjectSecrets)' }),
  rootfsCacheBytes: integer({ default: 20 * 1024 * MIB, min: MIB, description: 'rootfs cache size; least recently used images above it are evicted' }),
  fetchTimeout: duration({ default: '10m', description: 'how long one rootfs download may take' }),
  logBufferBytes: integer({ default: 256 * 1024, min: 1024, max: 64 * MIB, description: 'workload output kept per instance for StreamInstanceLogs' }),
  reconcileInterval: duration({ default: '10s', description: 'how often desired instances are checked against the VMs the driver runs' }),
  keepVmWorkDirs: optional(
    path({
      description:
        "for debugging and leak checks: move a stopped VM's work dir (console and VMM logs) under this directory instead of deleting it; nothing cleans it up",
    }),
  ),
  network: boolean({
    default: false,
    description:
      'give every VM a network interface: a TAP device on the node bridge and an address of the node subnet and the nftables rules that keep them apart (needs root, /dev/net/tun, ip and nft)',
  }),
  networkBridge: string({ default: 'swg0', description: 'the node bridge the VM TAP devices join (created when absent; at most 15 characters)' }),
  networkSubnet: optional(
    string({
      description:
        "override of the node's IPv4 subnet (the bridge takes its first address, each VM one of the others); normally unset: the scheduler gives each node its own out of its CLUSTER_CIDR. Set, it wins, and nothing keeps another node from the same range",
    }),
  ),
  networkDns: string({ default: '', description: 'resolvers the VMs get, comma-separated IPv4 addresses (empty: each image keeps its resolv.conf)' }),
  networkBlocked: string({
    default: '',
    description:
      'IPv4 addresses or CIDRs the VMs may not reach through the node, comma-separated, besides the control services (always blocked), e.g. a management network',
  }),
  networkNamespace: optional(
    string({
      description: 'a named network namespace (ip netns) holding the bridge and TAP devices; the VMM must run in it too (tests isolate the network this way)',
    }),
  ),
  stopVmsOnExit: boolean({
    default: false,
    description: 'stop every VM when the agent shuts down (default: leave them running; a restarted agent re-adopts them)',
  }),
});
