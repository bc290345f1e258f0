import { describe, expect, it } from 'vitest';
import type { VmSpec } from '../types.js';
import { qemuArgs } from './qemu-args.js';

const spec: VmSpec = { instanceId: 'shop-2-ab12cd34', vcpus: 2, memoryMib: 512, rootfsPath: '/cache/rootfs,v1.ext4', workDir: '/state/vms/shop-2-ab12cd34' };
const image = { vmlinuxPath: '/img/vmlinux', vmlinuzPath: '/img/vmlinuz', initramfsPath: '/img/initramfs.cpio.gz' };
const paths = {
  consoleLog: '/w/console.log',
  consoleSocket: '/w/console.sock',
  qmpSocket: '/w/qmp.sock',
  guestSocket: '/w/guest.sock',
  pidFile: '/w/qemu.pid',
};

/** The value following each occurrence of flag. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [args[i + 1] ?? ''] : []));
}

describe('qemuArgs', () => {
  it('attaches the rootfs read-only, the guest channel as virtio-serial, and names the instance', () => {
    const args = qemuArgs({ spec, image, accel: 'tcg', kernel: 'vmlinux', paths, sandbox: false });
    expect(values(args, '-name')).toEqual(['shellwego-shop-2-ab12cd34']);
    // A bounded TCG code cache keeps the VMM's memory overhead bounded.
    expect(values(args, '-accel')).toEqual(['tcg,tb-size=128']);
    expect(values(args, '-machine')).toEqual(['pc']);
    expect(values(args, '-m')).toEqual(['512']);
    expect(values(args, '-smp')).toEqual(['2']);
    expect(args).toEqual(expect.arrayContaining(['-nodefaults', '-nographic', '-no-reboot']));
    expect(values(args, '-kernel')).toEqual(['/img/vmlinux']);
    expect(values(args, '-initrd')).toEqual(['/img/initramfs.cpio.gz']);
    // A comma in a path is doubled, or QEMU would read the rest as another option.
    expect(values(args, '-drive')).toEqual(['file=/cache/rootfs,,v1.ext4,format=raw,if=none,id=rootfs,readonly=on']);
    expect(values(args, '-chardev')).toEqual([
      'socket,id=console0,path=/w/console.sock,server=on,wait=on',
      'socket,id=ch0,path=/w/guest.sock,server=on,wait=off',
    ]);
    // The console is a socket the agent reads into a bounded file, never a file QEMU appends to.
    expect(values(args, '-serial')).toEqual(['chardev:console0']);
    expect(args.indexOf('-chardev')).toBeLessThan(args.indexOf('-qmp'));
    expect(values(args, '-device')).toEqual([
      'virtio-serial-pci',
      'virtserialport,chardev=ch0,name=shellwego.0',
      'virtio-blk-pci,drive=rootfs',
      'virtio-rng-pci',
    ]);
    expect(values(args, '-pidfile')).toEqual(['/w/qemu.pid']);
    expect(values(args, '-append')[0]?.split(' ')).toEqual([
      'console=ttyS0',
      'panic=-1',
      'shellwego.channel=virtio-serial:shellwego.0',
      'shellwego.rootfs=/dev/vda',
      'shellwego.hostname=shop-2-ab12cd34',
    ]);
    expect(args.join(' ')).not.toContain('vsock');
    expect(args).not.toContain('-sandbox');
  });

  it('runs QEMU under its seccomp sandbox with every restriction when the binary has it', () => {
    const args = qemuArgs({ spec, image, accel: 'tcg', kernel: 'vmlinux', paths, sandbox: true });
    expect(values(args, '-sandbox')).toEqual(['on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']);
  });

  it('boots vmlinuz when asked and adds a TAP interface when networking is configured', () => {
    const args = qemuArgs({
      spec: { ...spec, network: { tapDevice: 'tap7', guestMac: '06:00:00:00:00:07', mtu: 1400 } },
      image,
      accel: 'kvm',
      kernel: 'vmlinuz',
      paths,
      sandbox: false,
    });
    expect(values(args, '-kernel')).toEqual(['/img/vmlinuz']);
    expect(values(args, '-netdev')).toEqual(['tap,id=net0,ifname=tap7,script=no,downscript=no']);
    expect(values(args, '-device')).toContain('virtio-net-pci,netdev=net0,mac=06:00:00:00:00:07,host_mtu=1400');
  });
});
