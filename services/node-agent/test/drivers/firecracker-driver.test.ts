// The firecracker driver against a STAND-IN FOR FIRECRACKER (firecracker-stand-in.ts: this host
// has neither the binary nor a usable KVM). The driver spawns the stand-in exactly as it would
// spawn firecracker; the test checks the API request sequence, validates every body against the
// official schema (vendored in @shellwego/testing from shared/reference), then calls GuestService through the
// hybrid vsock handshake on the handle's channel, adopts after a simulated agent restart, stops.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRunning } from '@shellwego/kit/process';
import { FirecrackerSchema, firecrackerSchemaPath } from '@shellwego/testing/firecracker-schema';
import { buildGuestAgent } from '@shellwego/testing/guest-agent';
import { capturingLogger } from '@shellwego/testing/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirecrackerDriver } from '../../src/drivers/firecracker/firecracker-driver.js';
import { type GuestImage, VmDriverError, type VmSpec } from '../../src/drivers/types.js';
import { parseVmRecord, vmRecordOf } from '../../src/drivers/vm-record.js';
import { type GuestSession, openGuest, runToExit } from './guest-session.js';

const here = dirname(fileURLToPath(import.meta.url));
const schemaPath = firecrackerSchemaPath;
const skipReason = existsSync(schemaPath) ? undefined : `the official Firecracker API schema is missing at ${schemaPath}`;
if (skipReason !== undefined) {
  console.warn(`[firecracker-driver] SKIPPING: ${skipReason}`);
}

interface Recorded {
  id: string;
  method: string;
  path: string;
  body: Record<string, unknown>;
  status: number;
  fault?: string;
}

let dir: string;
let image: GuestImage;
let rootfs: string;
let recordPath: string;
let validator: FirecrackerSchema;
let bundle: string;
const sessions: GuestSession[] = [];
const pids: number[] = [];

beforeAll(async () => {
  if (skipReason !== undefined) return;
  dir = await mkdtemp(join(tmpdir(), 'drv-fc-'));
  bundle = (await buildGuestAgent()).outfile;
  validator = FirecrackerSchema.load(schemaPath, { rejectUndeclaredProperties: true });
  // The stand-in only checks that Firecracker could open these; their content does not matter.
  image = { vmlinuxPath: join(dir, 'vmlinux'), vmlinuzPath: join(dir, 'vmlinuz'), initramfsPath: join(dir, 'initramfs.cpio.gz') };
  rootfs = join(dir, 'rootfs.ext4');
  for (const file of [image.vmlinuxPath, image.vmlinuzPath, image.initramfsPath, rootfs]) {
    await writeFile(file, 'placeholder');
  }
  recordPath = join(dir, 'requests.jsonl');
});

afterAll(async () => {
  if (skipReason !== undefined) return;
  for (const session of sessions) {
    session.transport.close();
  }
  for (const pid of pids) {
    if (isRunning(pid)) {
      process.kill(-pid, 'SIGKILL');
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/** A `firecracker` executable that runs the stand-in with the stand-in-only flags prepended. */
async function standInBinary(name: string, extra: string[] = []): Promise<string> {
  const tsx = import.meta.resolve('tsx');
  const path = join(dir, name);
  const args = [
    `--import ${tsx}`,
    join(here, 'firecracker-stand-in.ts'),
    `--stand-in-record ${recordPath}`,
    `--stand-in-schema ${schemaPath}`,
    `--stand-in-guest-agent ${bundle}`,
    ...extra,
  ];
  await writeFile(path, `#!/bin/sh\nexec "${process.execPath}" ${args.join(' ')} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

function requestsOf(instanceId: string): Recorded[] {
  if (!existsSync(recordPath)) return [];
  return readFileSync(recordPath, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Recorded)
    .filter((r) => r.id === instanceId);
}

function spec(name: string, extra: Partial<VmSpec> = {}): VmSpec {
  return {
    instanceId: `${name}-${randomBytes(3).toString('hex')}`,
    vcpus: 2,
    memoryMib: 512,
    rootfsPath: rootfs,
    guestImage: image,
    workDir: join(dir, name),
    ...extra,
  };
}

describe.skipIf(skipReason !== undefined)('firecracker driver (against a stand-in for Firecracker)', () => {
  it('configures the VM with schema-valid requests in order, serves GuestService over hybrid vsock, adopts and stops', async () => {
    const { logger } = capturingLogger();
    const binary = await standInBinary('firecracker');
    const d = new FirecrackerDriver({ log: logger, binary });
    const vm = await d.boot(spec('fc', { network: { tapDevice: 'tap-fc0', guestMac: '06:00:ac:10:00:02' } }));
    pids.push(vm.pid);
    expect(vm.channel).toEqual({ kind: 'firecracker-vsock', udsPath: join(vm.workDir, 'vsock.sock'), port: 1024 });

    const requests = requestsOf(vm.instanceId);
    expect(requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'PUT /boot-source 204',
      'PUT /machine-config 204',
      'PUT /drives/rootfs 204',
      'PUT /vsock 204',
      'PUT /network-interfaces/eth0 204',
      'PUT /actions 204',
    ]);
    // Validated here too, independently of the stand-in, against the official schema.
    for (const r of requests) {
      expect(validator.validateRequest(r.method, r.path, r.body), `${r.method} ${r.path}`).toEqual([]);
    }
    const [bootSource, machine, drive, vsock, net, start] = requests.map((r) => r.body);
    expect(bootSource).toMatchObject({ kernel_image_path: image.vmlinuxPath, initrd_path: image.initramfsPath });
    expect(String(bootSource?.boot_args).split(' ')).toEqual(
      expect.arrayContaining(['console=ttyS0', 'reboot=k', 'pci=off', 'shellwego.on_exit=reboot', 'shellwego.channel=vsock:1024', 'shellwego.rootfs=/dev/vda']),
    );
    expect(machine).toEqual({ vcpu_count: 2, mem_size_mib: 512, smt: false });
    expect(drive).toEqual({ drive_id: 'rootfs', path_on_host: rootfs, is_root_device: false, is_read_only: true });
    expect(vsock).toEqual({ guest_cid: 3, uds_path: join(vm.workDir, 'vsock.sock') });
    expect(net).toEqual({ iface_id: 'eth0', host_dev_name: 'tap-fc0', guest_mac: '06:00:ac:10:00:02' });
    expect(start).toEqual({ action_type: 'InstanceStart' });

    // GuestService through lib/vm-channel's CONNECT/OK client on the handle's channel.
    const canary = randomBytes(16);
    const session = openGuest(vm.channel);
    sessions.push(session);
    expect(await session.client.health({})).toMatchObject({ agentAlive: true });
    const result = await runToExit(session.client, ['/bin/sh', '-c', 'printf %s "$CANARY" | sha256sum | cut -d" " -f1'], {
      CANARY: Buffer.from(canary.toString('hex')),
    });
    expect(result).toMatchObject({ stdout: `${createHash('sha256').update(canary.toString('hex')).digest('hex')}\n`, exitCode: 0 });
    session.transport.close();

    // Simulated agent restart: a fresh driver adopts from the persisted record and stops the VM.
    const fresh = new FirecrackerDriver({ log: logger, binary });
    const adopted = await fresh.adopt(parseVmRecord(JSON.parse(JSON.stringify(vmRecordOf(vm)))));
    expect(adopted.kind).toBe('adopted');
    await fresh.stop(vm, { graceMs: 5_000 });
    expect(await vm.exited).toEqual({ code: 0, signal: null }); // it left on SendCtrlAltDel, not by SIGKILL
    expect(requestsOf(vm.instanceId).at(-1)).toMatchObject({ path: '/actions', body: { action_type: 'SendCtrlAltDel' }, status: 204 });
    expect(isRunning(vm.pid)).toBe(false);
    expect(existsSync(vm.workDir)).toBe(false);
  });

  it("fails the boot with Firecracker's fault message, kills the VMM and removes its files", async () => {
    const { logger } = capturingLogger();
    const d = new FirecrackerDriver({ log: logger, binary: await standInBinary('firecracker-failing', ['--stand-in-fail /machine-config']) });
    const s = spec('fcfail');
    const err = await d.boot(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmDriverError);
    expect((err as VmDriverError).reason).toBe('boot-failed');
    expect((err as VmDriverError).message).toMatch(/Firecracker refused PUT \/machine-config \(HTTP 400\): stand-in: injected failure/);
    expect(requestsOf(s.instanceId).map((r) => r.path)).toEqual(['/boot-source', '/machine-config']);
    expect(existsSync(s.workDir)).toBe(false);
    expect(await d.list()).toEqual([]);
  });

  it('says what is missing when the firecracker binary is not there', async () => {
    const d = new FirecrackerDriver({ log: capturingLogger().logger, binary: join(dir, 'no-such-firecracker') });
    const s = spec('fcmissing');
    const err = await d.boot(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmDriverError);
    expect((err as VmDriverError).reason).toBe('unavailable');
    expect((err as VmDriverError).message).toMatch(/no-such-firecracker/);
    expect(existsSync(s.workDir)).toBe(false);
  });
});
