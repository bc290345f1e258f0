// The Firecracker API calls that configure and start one VM, in order, as plain data: the driver
// sends them, the tests validate every body against the official schema.
import type { GuestImage, VmSpec } from '../types.js';

export interface FirecrackerRequest {
  readonly method: 'PUT';
  readonly path: string;
  readonly body: Readonly<Record<string, unknown>>;
}

export interface BootPlanInput {
  readonly spec: VmSpec;
  readonly image: GuestImage;
  /** Host side of the hybrid vsock device. */
  readonly vsockUdsPath: string;
  /** The guest port the agent's vsock bridge listens on. */
  readonly vsockPort: number;
  readonly guestCid: number;
  readonly extraKernelArgs?: readonly string[];
}

export const ROOTFS_DRIVE_ID = 'rootfs';
export const NETWORK_IFACE_ID = 'eth0';

/**
 * Kernel command line (deploy/guest-image/README.md): the initramfs is the root (no root=),
 * `reboot=k` + on_exit=reboot make Firecracker exit when the agent ends (it has no ACPI
 * power-off), `pci=off` because Firecracker has no PCI bus, the app rootfs is the only drive.
 */
export function firecrackerKernelArgs(input: Pick<BootPlanInput, 'spec' | 'vsockPort' | 'extraKernelArgs'>): string {
  return [
    'console=ttyS0',
    'reboot=k',
    'panic=1',
    'pci=off',
    'shellwego.on_exit=reboot',
    `shellwego.channel=vsock:${input.vsockPort}`,
    'shellwego.rootfs=/dev/vda',
    `shellwego.hostname=${input.spec.instanceId}`,
    ...(input.extraKernelArgs ?? []),
  ].join(' ');
}

export function firecrackerBootPlan(input: BootPlanInput): FirecrackerRequest[] {
  const { spec, image } = input;
  const requests: FirecrackerRequest[] = [
    {
      method: 'PUT',
      path: '/boot-source',
      body: { kernel_image_path: image.vmlinuxPath, initrd_path: image.initramfsPath, boot_args: firecrackerKernelArgs(input) },
    },
    { method: 'PUT', path: '/machine-config', body: { vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib, smt: false } },
    {
      method: 'PUT',
      path: `/drives/${ROOTFS_DRIVE_ID}`,
      body: { drive_id: ROOTFS_DRIVE_ID, path_on_host: spec.rootfsPath, is_root_device: false, is_read_only: true },
    },
    { method: 'PUT', path: '/vsock', body: { guest_cid: input.guestCid, uds_path: input.vsockUdsPath } },
  ];
  if (spec.network !== undefined) {
    const { tapDevice, guestMac, mtu } = spec.network;
    requests.push({
      method: 'PUT',
      path: `/network-interfaces/${NETWORK_IFACE_ID}`,
      body: {
        iface_id: NETWORK_IFACE_ID,
        host_dev_name: tapDevice,
        ...(guestMac !== undefined ? { guest_mac: guestMac } : {}),
        ...(mtu !== undefined ? { mtu } : {}),
      },
    });
  }
  requests.push({ method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart' } });
  return requests;
}
